// Starts the lean baseline process: bare.ts and baseline-worker.ts transpiled to plain
// JavaScript (TypeScript's transpileModule) under node_modules/.cache, run by `node` with no
// loader, and driven over IPC. Every "bare Node loop" and the bare ws server run there.
import { type ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import type { BareScripts, SearchesJob, SearchesResult } from './bare.js';
import type { BaselineRequest } from './baseline-worker.js';
import { ITEMS_PHP, PHP, ROOT, SUPPLIERS_PHP, cleanEnv, procCpuMs, stopChild } from './procs.js';

const CACHE = path.join(ROOT, 'node_modules', '.cache', 'aggregator-bench');
const SCRIPTS: BareScripts = { php: PHP, suppliers: SUPPLIERS_PHP, items: ITEMS_PHP };

function compile(): string {
  fs.mkdirSync(CACHE, { recursive: true });
  const pkg = path.join(CACHE, 'package.json');
  if (!fs.existsSync(pkg)) fs.writeFileSync(pkg, '{"type":"module"}\n');
  for (const name of ['bare', 'baseline-worker']) {
    const source = fs.readFileSync(path.join(ROOT, 'bench', 'lib', `${name}.ts`), 'utf8');
    const out = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: `${name}.ts`,
    });
    // Write-then-rename: another bench run (or npm test) may be reading the same file.
    const tmp = path.join(CACHE, `${name}.js.${process.pid}`);
    fs.writeFileSync(tmp, out.outputText);
    fs.renameSync(tmp, path.join(CACHE, `${name}.js`));
  }
  return path.join(CACHE, 'baseline-worker.js');
}

type Reply = { id: number; result?: unknown; error?: string };
type Request = BaselineRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export class Baseline {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (msg: Reply) => {
      const w = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      if (msg.error !== undefined) w?.reject(new Error(`baseline: ${msg.error}`));
      else w?.resolve(msg.result);
    });
    child.once('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`baseline process exited (${code})`));
      this.waiting.clear();
    });
  }

  static start(): Baseline {
    const child = fork(compile(), [], { execArgv: [], env: cleanEnv(), stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    return new Baseline(child);
  }

  private call<T>(req: Request): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: (v) => resolve(v as T), reject });
      this.child.send({ ...req, id });
    });
  }

  /** CPU ms the baseline process used so far. */
  cpuMs(): number {
    return this.child.pid === undefined ? 0 : procCpuMs(this.child.pid);
  }

  /** Bare searches (suppliers script, then its items scripts) through a semaphore of job.pool. */
  searches(job: SearchesJob): Promise<SearchesResult> {
    return this.call({ op: 'searches', scripts: SCRIPTS, job });
  }

  /** One bare run of a bench script; ms from spawn to its end. */
  php(script: 'suppliers' | 'items', line: object): Promise<{ ms: number; code: number | null; bytes: number }> {
    return this.call({ op: 'php', scripts: SCRIPTS, script, line: JSON.stringify(line) });
  }

  /** One bare run of any program (argv), `line` on stdin; ms from spawn to its end. */
  command(argv: string[], line: string): Promise<{ ms: number; code: number | null; bytes: number }> {
    return this.call({ op: 'command', argv, line });
  }

  /** Starts a bare ws server replaying the frames in `file`; its port. */
  async serveFrames(file: string): Promise<number> {
    return (await this.call<{ port: number }>({ op: 'serve', file })).port;
  }

  async stop(): Promise<void> {
    await stopChild(this.child, 2000);
  }
}
