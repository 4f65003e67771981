// The baselines' "bare Node loop": child_process.spawn of the same PHP scripts, one JSON line
// on stdin, stdout collected, with a plain FIFO semaphore for the same concurrency as the pool.
// No process groups, no timeouts, no validation: the least any Node program could do.
// Node built-ins only: this file runs in the lean baseline process (see baseline.ts).
import { spawn } from 'node:child_process';

export interface BareScripts {
  readonly php: string;
  readonly suppliers: string;
  readonly items: string;
}

export interface BareRun {
  ms: number;
  stdout: string;
  code: number | null;
}

/** Runs `php -d display_errors=stderr SCRIPT` with `line` + '\n' on stdin. */
export function runPhp(php: string, script: string, line: string): Promise<BareRun> {
  return runCommand([php, '-d', 'display_errors=stderr', script], line);
}

/** One run of any program (argv[0] with its arguments), `line` on stdin; as runPhp. */
export function runCommand(argv: readonly string[], line: string): Promise<BareRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    // detached (setsid) like the aggregator's scripts: with the kernel's autogroup scheduling
    // each session gets its own CPU share, so on a busy machine scripts in their own session
    // get more CPU than scripts sharing the loop's session. Both sides get the same treatment.
    const [program = '', ...args] = argv;
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'ignore'], detached: true });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stdin.on('error', () => {}); // a script may exit before reading
    child.stdin.end(`${line}\n`);
    child.once('error', reject);
    child.once('close', (code) => resolve({ ms: performance.now() - started, stdout: Buffer.concat(out).toString('utf8'), code }));
  });
}

export class Semaphore {
  private free: number;
  private readonly waiters: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiters.push(r));
    try {
      return await fn();
    } finally {
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    }
  }
}

export interface BareSearch {
  ms: number;
  scripts: number;
  items: number;
  firstItemMs: number | null;
}

/**
 * What a search is without the aggregator: the suppliers script, then every supplier's items
 * script (in parallel, through `sem`); parsed just enough to feed the next step and count items.
 */
export async function bareSearch(request: object, sem: Semaphore, s: BareScripts): Promise<BareSearch> {
  const started = performance.now();
  const sup = await sem.use(() => runPhp(s.php, s.suppliers, JSON.stringify(request)));
  const suppliers = (JSON.parse(sup.stdout) as { suppliers: object[] }).suppliers;
  let items = 0;
  let firstItemMs: number | null = null;
  await Promise.all(
    suppliers.map(async (supplier) => {
      const run = await sem.use(() => runPhp(s.php, s.items, JSON.stringify(supplier)));
      const n = (JSON.parse(run.stdout) as { items: unknown[] }).items.length;
      if (n > 0) firstItemMs ??= performance.now() - started;
      items += n;
    }),
  );
  return { ms: performance.now() - started, scripts: 1 + suppliers.length, items, firstItemMs };
}

export interface SearchesJob {
  request: object;
  /** Semaphore width (the pool size it stands for). */
  pool: number;
  /** Searches running at once, and in all. */
  concurrency: number;
  total: number;
}

export interface SearchesResult {
  ms: number;
  searches: BareSearch[];
}

/** `total` bare searches, `concurrency` at a time, all through one semaphore of `pool`. */
export async function bareSearches(job: SearchesJob, s: BareScripts): Promise<SearchesResult> {
  const sem = new Semaphore(job.pool);
  const searches: BareSearch[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < job.total) {
      next++;
      searches.push(await bareSearch(job.request, sem, s));
    }
  };
  await Promise.all(Array.from({ length: Math.min(job.concurrency, job.total) }, worker));
  return { ms: performance.now() - started, searches };
}
