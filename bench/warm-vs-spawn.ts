// Warm PHP against spawn: scripts/s at concurrency 20 of bench/scripts/items.php with the warm
// starter, the spawn starter and the bare spawn loop (bench/lib/bare.ts), CPU per script, the
// time of one script at a time, and the warm parent's RSS. Every loop runs in the same lean
// `node` process (bench/lib/warm-worker.ts, transpiled like the baseline worker), rounds
// alternating between the three so that the machine's noise falls on all of them.
//
//   npm run build && node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/warm-vs-spawn.ts [--smoke]
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import type { WorkerJob, WorkerResult } from './lib/warm-worker.js';
import { ITEMS_PHP, PHP, ROOT, cleanEnv, stopChild } from './lib/procs.js';

const smoke = process.argv.includes('--smoke');
const ROUNDS = smoke ? 1 : 5;
const PER_ROUND = smoke ? { warm: 100, spawn: 40, bare: 40 } : { warm: 2000, spawn: 400, bare: 400 };
const SEQUENTIAL = smoke ? 20 : 200;
const CONCURRENCY = 20;
const MODES = ['warm', 'spawn', 'bare'] as const;
type Mode = (typeof MODES)[number];

const DIST = path.join(ROOT, 'dist', 'src', 'processes');
if (!fs.existsSync(path.join(DIST, 'warm.js'))) throw new Error('run "npm run build" first');
const CACHE = path.join(ROOT, 'node_modules', '.cache', 'aggregator-bench');

function compile(): string {
  fs.mkdirSync(CACHE, { recursive: true });
  if (!fs.existsSync(path.join(CACHE, 'package.json'))) fs.writeFileSync(path.join(CACHE, 'package.json'), '{"type":"module"}\n');
  for (const name of ['bare', 'warm-worker']) {
    const out = ts.transpileModule(fs.readFileSync(path.join(ROOT, 'bench', 'lib', `${name}.ts`), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    const tmp = path.join(CACHE, `${name}.js.${process.pid}`);
    fs.writeFileSync(tmp, out.outputText);
    fs.renameSync(tmp, path.join(CACHE, `${name}.js`));
  }
  return path.join(CACHE, 'warm-worker.js');
}

const worker = fork(compile(), [], { execArgv: [], env: cleanEnv(), stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
let seq = 0;
const waiting = new Map<number, (r: WorkerResult) => void>();
worker.on('message', (msg: { id: number; result?: WorkerResult; error?: string }) => {
  if (msg.error) throw new Error(msg.error);
  waiting.get(msg.id)?.(msg.result as WorkerResult);
});
function job(mode: Mode, n: number, concurrency: number): Promise<WorkerResult> {
  const id = ++seq;
  const j: WorkerJob = { id, mode, n, concurrency, php: PHP, items: ITEMS_PHP, dist: DIST };
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    worker.send(j);
  });
}

const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
process.stderr.write(`warm vs spawn: nproc ${os.availableParallelism()}, node ${process.version}, load ${load()}\n`);

const totals = Object.fromEntries(MODES.map((m) => [m, { n: 0, ms: 0, self: 0, scripts: 0, parent: 0, failed: 0 }])) as Record<Mode, { n: number; ms: number; self: number; scripts: number; parent: number; failed: number }>;
const perRound: Record<Mode, number[]> = { warm: [], spawn: [], bare: [] };
// Warm-up: the parent starts, PHP's files are cached, opcache has the script.
for (const m of MODES) await job(m, 20, CONCURRENCY);
const rest = await job('warm', 1, 1);
let peak = 0;
for (let r = 0; r < ROUNDS; r++) {
  for (const m of MODES) {
    const res = await job(m, PER_ROUND[m], CONCURRENCY);
    const t = totals[m];
    t.n += PER_ROUND[m];
    t.ms += res.ms;
    t.self += res.selfCpuMs;
    t.scripts += res.scriptCpuMs;
    t.parent += res.parentCpuMs;
    t.failed += res.failed;
    perRound[m].push((PER_ROUND[m] * 1000) / res.ms);
    if (res.parentPeakKb) peak = Math.max(peak, res.parentPeakKb);
  }
}
const seqMs: Record<Mode, number> = { warm: 0, spawn: 0, bare: 0 };
for (const m of MODES) seqMs[m] = (await job(m, SEQUENTIAL, 1)).ms / SEQUENTIAL;
const after = await job('warm', 1, 1);

const rate = (m: Mode) => (totals[m].n * 1000) / totals[m].ms;
const per = (m: Mode, k: 'self' | 'scripts' | 'parent') => totals[m][k] / totals[m].n;
const rows = MODES.map((m) => ({
  mode: m,
  'scripts/s (c=20)': rate(m).toFixed(0),
  'x bare': (rate(m) / rate('bare')).toFixed(2),
  rounds: perRound[m].map((x) => x.toFixed(0)).join(' '),
  'node ms/script': per(m, 'self').toFixed(2),
  'warm parent ms/script': m === 'warm' ? per(m, 'parent').toFixed(2) : '-',
  'php ms/script': per(m, 'scripts').toFixed(2),
  'total CPU ms/script': (per(m, 'self') + per(m, 'parent') + per(m, 'scripts')).toFixed(2),
  'one at a time, ms': seqMs[m].toFixed(2),
  failed: totals[m].failed,
}));
console.table(rows);
console.log(
  `warm parent RSS: ${((rest.parentRssKb ?? 0) / 1024).toFixed(1)} MB at rest, ${(peak / 1024).toFixed(1)} MB at the peak of the load, ` +
    `${((after.parentRssKb ?? 0) / 1024).toFixed(1)} MB after it (pid ${String(rest.parentPid)})`,
);
console.log(`load average after: ${load()}; CPU ms are user + system from /proc (node: the loop's own process; php: the scripts, as reaped children)`);
await stopChild(worker, 3000);
