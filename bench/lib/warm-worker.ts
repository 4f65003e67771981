// The lean process of bench/warm-vs-spawn.ts: plain `node` with the built starters
// (dist/src/processes/) and bare.ts, so that spawning costs what it costs a lean Node program.
// One job per IPC message: `n` items scripts through a semaphore of `concurrency`, with the warm
// starter, the spawn starter or the bare spawn loop; answers the time and the CPU it took.
import fs from 'node:fs';
import { Semaphore, runPhp } from './bare.js';

export interface WorkerJob {
  id: number;
  mode: 'warm' | 'spawn' | 'bare';
  n: number;
  concurrency: number;
  php: string;
  items: string;
  dist: string;
}

export interface WorkerResult {
  ms: number;
  failed: number;
  /** CPU (user + system) of this process, of the scripts, and of the warm parent itself. */
  selfCpuMs: number;
  scriptCpuMs: number;
  parentCpuMs: number;
  parentPid?: number;
  parentRssKb?: number;
  parentPeakKb?: number;
}

interface Starter {
  start(c: { file: string; args: string[]; line: string }, env: NodeJS.ProcessEnv): Promise<
    | { ok: true; script: { stdin: NodeJS.WritableStream; stdout: NodeJS.ReadableStream; exited: Promise<{ code: number | null }> } }
    | { ok: false; reason: string }
  >;
}

const TICKS = 100;
/** utime + stime, and cutime + cstime (reaped children), in ms. */
function cpu(pid: number | 'self'): { own: number; children: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  return { own: (((f[11] ?? 0) + (f[12] ?? 0)) * 1000) / TICKS, children: (((f[13] ?? 0) + (f[14] ?? 0)) * 1000) / TICKS };
}
function kb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

let warm: (Starter & { parents(): { pid: number | undefined }[] }) | undefined;
let spawnStarter: Starter | undefined;
const env = { ...process.env };

async function viaStarter(st: Starter, job: WorkerJob): Promise<boolean> {
  const command = { file: job.php, args: ['-d', 'display_errors=stderr', job.items], line: `${job.php} ${job.items}` };
  const res = await st.start(command, env);
  if (!res.ok) return false;
  const { script } = res;
  let out = 0;
  script.stdout.on('data', (c: Buffer) => (out += c.length));
  const closed = new Promise((r) => script.stdout.on('close', r));
  script.stdin.on('error', () => {});
  script.stdin.end('{"items":1}\n');
  const status = await script.exited;
  await closed;
  return status.code === 0 && out > 0;
}

async function run(job: WorkerJob): Promise<WorkerResult> {
  if (job.mode === 'warm' && !warm) {
    const mod = (await import(`${job.dist}/warm.js`)) as { WarmStarter: new () => typeof warm };
    warm = new mod.WarmStarter();
    await viaStarter(warm as Starter, job); // the parent starts here, not in the measurement
  }
  if (job.mode === 'spawn' && !spawnStarter) {
    spawnStarter = ((await import(`${job.dist}/spawn.js`)) as { spawnStarter: Starter }).spawnStarter;
  }
  const parentPid = job.mode === 'warm' ? warm?.parents()[0]?.pid : undefined;
  const sem = new Semaphore(job.concurrency);
  let failed = 0;
  let peakRss = 0;
  const sampler = parentPid ? setInterval(() => (peakRss = Math.max(peakRss, kb(parentPid, 'VmRSS'))), 20) : undefined;
  const self0 = cpu('self');
  const parent0 = parentPid ? cpu(parentPid) : undefined;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: job.n }, () =>
      sem.use(async () => {
        let ok: boolean;
        if (job.mode === 'bare') ok = (await runPhp(job.php, job.items, '{"items":1}')).code === 0;
        else ok = await viaStarter((job.mode === 'warm' ? warm : spawnStarter) as Starter, job);
        if (!ok) failed++;
      }),
    ),
  );
  const ms = performance.now() - t0;
  clearInterval(sampler);
  const self1 = cpu('self');
  const parent1 = parentPid ? cpu(parentPid) : undefined;
  return {
    ms,
    failed,
    selfCpuMs: self1.own - self0.own,
    scriptCpuMs: parent0 && parent1 ? parent1.children - parent0.children : self1.children - self0.children,
    parentCpuMs: parent0 && parent1 ? parent1.own - parent0.own : 0,
    parentPid,
    parentRssKb: parentPid ? kb(parentPid, 'VmRSS') : undefined,
    parentPeakKb: parentPid ? Math.max(peakRss, kb(parentPid, 'VmRSS')) : undefined,
  };
}

process.on('message', (job: WorkerJob) => {
  run(job).then(
    (result) => process.send?.({ id: job.id, result }),
    (err: unknown) => process.send?.({ id: job.id, error: err instanceof Error ? err.stack : String(err) }),
  );
});
process.on('disconnect', () => {
  void Promise.resolve((warm as { close?: () => Promise<void> } | undefined)?.close?.()).finally(() => process.exit(0));
});
