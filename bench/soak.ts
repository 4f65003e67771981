// Soak: a real aggregator (`node dist/main.js`, real PHP demo scripts) under 50 clients that
// loop for N minutes over the demo scenarios (docs/scripts.md), closing at random, reusing
// sockets, sending bad requests. Every second it samples the server's RSS, V8 heap, open descriptors,
// live script processes and /stats; every 10 s it forces a full GC in the server (through its
// loopback inspector) and reads RSS right after. It passes when, after warm-up, RSS after GC and
// the descriptors that do not follow the load are flat (±10%, first fifth against last fifth),
// the descriptors at rest end where they started, no script process outlives the load or the
// server, and no /stats invariant and no frame invariant (docs/protocol.md, Order and
// invariants) ever breaks.
//
//   npm run soak                       # 10 minutes, 50 clients (see docs/reliability.md)
//   npm run soak -- --minutes 30 --clients 100 --json
// test/soak-smoke.test.ts runs it for 20 seconds.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { invariantViolations, type AnyFrame } from '../test/helpers/harness.js';
import { findTagged, parseOwner } from '../src/processes/reaper.js';
import { fdCount, rssBytes } from '../test/helpers/procs.js';
import { type AggregatorProcess, freePort, sleep, startAggregator } from './lib/procs.js';

export interface SoakOptions {
  seconds: number;
  clients: number;
  /** Seconds at the start not judged for flatness (heap growth, JIT). */
  warmupSeconds: number;
  /** Allowed relative change of RSS and descriptors between the first and last window. */
  tolerance: number;
  /** AGGREGATOR_DEMO_DELAY_MS of the demo scripts. */
  demoDelayMs: number;
  /** aggregator.pool.executor of the server. */
  pool: number;
  /** Progress lines on stderr. */
  progress: boolean;
}

export const DEFAULTS: SoakOptions = {
  seconds: 600,
  clients: 50,
  warmupSeconds: 60,
  tolerance: 0.1,
  demoDelayMs: 200,
  pool: 20,
  progress: true,
};

// Scenario weights: mostly normal searches, every failure mode now and then. The two that run
// until the session timeout are rarer: `sessionTimeout` alone queues 2,000 tasks, and a handful
// of them at once would make memory follow their number rather than time.
const SCENARIOS: [string, number][] = [
  ['normal', 60],
  ['analog', 30],
  ['mixed', 30],
  ['emptySuppliers', 10],
  ['emptyItems', 10],
  ['suppliersTimeout', 5],
  ['suppliersError', 5],
  ['suppliersNotJson', 5],
  ['suppliersBadResponse', 5],
  ['itemsTimeout', 5],
  ['itemsError', 5],
  ['itemsBadJson', 5],
  ['itemsBadResponse', 5],
  ['analogLoop', 3],
  ['sessionTimeout', 1],
];
// How a client behaves on one round.
const BEHAVIOURS: [Behaviour, number][] = [
  ['complete', 70],
  ['close-random', 12],
  ['reuse', 8],
  ['bad-json', 3],
  ['missing-field', 3],
  ['close-at-once', 4],
];
type Behaviour = 'complete' | 'close-random' | 'reuse' | 'bad-json' | 'missing-field' | 'close-at-once';

function pick<T>(table: [T, number][]): T {
  const total = table.reduce((n, [, w]) => n + w, 0);
  let r = Math.random() * total;
  for (const [v, w] of table) if ((r -= w) < 0) return v;
  return table[0]![0];
}

export interface Sample {
  t: number;
  rssMb: number;
  /** V8 heap in use (from /metrics), to tell a leak from garbage not yet collected. */
  heapMb: number;
  fds: number;
  /** fds less one socket per open session: the part that does not follow the load, which is
   *  what a leak would grow (the scripts' pipes are held by the launcher, not the server). */
  fdsBase: number;
  scripts: number;
  sessionAlive: number;
  poolBusy: number;
}

export interface SoakSummary {
  ok: boolean;
  failures: string[];
  machine: string;
  options: SoakOptions;
  searches: number;
  outcomes: Record<string, number>;
  samples: Sample[];
  /** baselineMb/finalMb/change: RSS right after a forced full GC (the lowest of the first and
   *  of the last fifth after warm-up); the rest: RSS as sampled every second. */
  rss: { startMb: number; baselineMb: number; finalMb: number; change: number; firstMedianMb: number; lastMedianMb: number; maxMb: number };
  gcSamples: { t: number; rssMb: number }[];
  heap: { baselineMb: number; finalMb: number; maxMb: number };
  /** What the descriptors at rest point to, after the load, that they did not before. */
  fdsGained: string[];
  fds: { idleBefore: number; idleAfter: number; underLoad: number; baseline: number; final: number; max: number; change: number };
  scripts: { max: number; leftAtRest: number; leftAfterExit: number };
  invariantBreaks: string[];
  /** /stats answers whose invariants were checked. */
  statsChecks: number;
  serverExit: string;
  /** The load generator's own RSS at the end (MB), to tell its memory from the server's. */
  clientRssMb: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.floor((s.length - 1) / 2)] as number);
};

/**
 * Live processes carrying the server's owner tag (src/processes/reaper.ts): its scripts and
 * their children; not its warm PHP parents, which carry a placeholder run ("-…") and stay.
 */
function scriptsOf(pid: number): number[] {
  return findTagged((owner, run) => parseOwner(owner).pid === pid && !run.startsWith('-')).map((p) => p.pid);
}

const TCP_STATES: Record<string, string> = { '01': 'ESTABLISHED', '06': 'TIME_WAIT', '08': 'CLOSE_WAIT', '0A': 'LISTEN', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '09': 'LAST_ACK' };

/** "tcp <local port> → <remote port> <state>" for a TCP socket inode, else "socket". */
function describeSocket(inode: string): string {
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[9] !== inode) continue;
      const port = (a?: string) => parseInt(a?.split(':')[1] ?? '0', 16);
      return `tcp :${port(f[1])} → :${port(f[2])} ${TCP_STATES[f[3] ?? ''] ?? f[3]}`;
    }
  }
  return 'socket';
}

/** What each open descriptor of `pid` is: a file path, or its kind ("socket", "pipe", …). */
function fdTargets(pid: number): string[] {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        const socket = /^socket:\[(\d+)\]$/.exec(target);
        if (socket) return describeSocket(socket[1] ?? '');
        return target.replace(/^(\w+):\[\d+\]$/, '$1').replace(/^anon_inode:/, '');
      } catch {
        return '?';
      }
    });
  } catch {
    return [];
  }
}

/** GET without keep-alive: a pooled socket of ours would count as a server descriptor at rest. */
function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

const stats = async (srv: AggregatorProcess) => JSON.parse(await get(`${srv.httpBase}/stats`)) as Record<string, number | string>;

const GC_EVERY_MS = 10_000;

/** The server's inspector (loopback only): just enough of the protocol to force a full GC. */
async function openInspector(port: number): Promise<{ collectGarbage(): Promise<void>; close(): void }> {
  const list = JSON.parse(await get(`http://127.0.0.1:${port}/json/list`)) as { webSocketDebuggerUrl: string }[];
  const url = list[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error('the server has no inspector target');
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let id = 0;
  const pending = new Map<number, (msg: { error?: { message: string } }) => void>();
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as { id?: number; error?: { message: string } };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg);
  });
  const call = (method: string) =>
    new Promise<void>((resolve, reject) => {
      const n = ++id;
      pending.set(n, (msg) => {
        pending.delete(n);
        if (msg.error) reject(new Error(`${method}: ${msg.error.message}`));
        else resolve();
      });
      ws.send(JSON.stringify({ id: n, method }));
    });
  await call('HeapProfiler.enable');
  return { collectGarbage: () => call('HeapProfiler.collectGarbage'), close: () => ws.close() };
}

/** nodejs_heap_size_used_bytes from /metrics, in MB (NaN when it cannot be read). */
async function heapUsedMb(base: string): Promise<number> {
  try {
    const text = await get(`${base}/metrics`);
    const m = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text);
    return m ? Number(m[1]) / 2 ** 20 : NaN;
  } catch {
    return NaN;
  }
}

function statsBreaks(s: Record<string, number | string>): string[] {
  const n = (k: string) => Number(s[k]);
  const bad: string[] = [];
  if (n('sessionTotal') !== n('sessionAlive') + n('sessionFinished')) bad.push('sessionTotal != sessionAlive + sessionFinished');
  if (n('taskTotal') !== n('taskPending') + n('taskSucceeded') + n('taskFailed'))
    bad.push('taskTotal != taskPending + taskSucceeded + taskFailed');
  if (n('taskRunning') > n('taskPending')) bad.push('taskRunning > taskPending');
  if (n('poolBusy') > n('poolSize')) bad.push('poolBusy > poolSize');
  for (const k of Object.keys(s)) if (typeof s[k] === 'number' && (s[k] as number) < 0) bad.push(`${k} < 0`);
  return bad;
}

interface Round {
  outcome: string;
  breaks: string[];
}

/** One client round: open, act as the behaviour says, wait for the close; what happened. */
function round(base: string, behaviour: Behaviour, scenario: string, sessionMs: number): Promise<Round> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${base}/ws`, { perMessageDeflate: false });
    const frames: AnyFrame[] = [];
    const request = { code: scenario, brand: 'ctr', apikey: 'soak-secret-apikey', analog: 1 };
    let closedByUs = false;
    const timers: NodeJS.Timeout[] = [];
    const giveUp = setTimeout(() => {
      ws.terminate();
      resolve({ outcome: 'HUNG', breaks: [`${scenario}/${behaviour}: no close within ${sessionMs + 15000} ms`] });
    }, sessionMs + 15000);
    ws.on('open', () => {
      if (behaviour === 'close-at-once') {
        closedByUs = true;
        return ws.close();
      }
      if (behaviour === 'bad-json') return ws.send('{"code": "normal", oops');
      if (behaviour === 'missing-field') return ws.send(JSON.stringify({ code: scenario, brand: 'ctr' }));
      ws.send(JSON.stringify(request));
      if (behaviour === 'reuse') timers.push(setTimeout(() => ws.readyState === ws.OPEN && ws.send(JSON.stringify(request)), 30));
      if (behaviour === 'close-random')
        timers.push(
          setTimeout(() => {
            closedByUs = true;
            if (Math.random() < 0.5) ws.close();
            else ws.terminate();
          }, Math.random() * 1500),
        );
    });
    ws.on('message', (data) => frames.push(JSON.parse(String(data)) as AnyFrame));
    ws.on('error', () => {}); // a close follows
    ws.on('close', (code) => {
      clearTimeout(giveUp);
      for (const t of timers) clearTimeout(t);
      const breaks = invariantViolations(frames).map((b) => `${scenario}/${behaviour}: ${b}`);
      if (JSON.stringify(frames).includes('soak-secret-apikey')) breaks.push(`${scenario}: a frame carries the apikey`);
      const last = frames.filter((f) => f._task === 'SESSION' && f._error !== 'E_SESSION_REUSED').at(-1);
      if (closedByUs && !last) return resolve({ outcome: 'closed by client', breaks });
      const outcome = last ? `${last._status}${last._error ? ` ${String(last._error)}` : ''} (${code})` : `no SESSION frame (${code})`;
      const expectedCodes = [1000, 4400, 4408];
      if (!last || !expectedCodes.includes(code) || last._error === 'E_UNKNOWN') breaks.push(`${scenario}/${behaviour}: ${outcome}`);
      resolve({ outcome, breaks });
    });
  });
}

export async function runSoak(partial: Partial<SoakOptions> = {}): Promise<SoakSummary> {
  const o: SoakOptions = { ...DEFAULTS, ...partial };
  const say = (line: string) => o.progress && process.stderr.write(`${line}\n`);
  process.env.AGGREGATOR_DEMO_DELAY_MS = String(o.demoDelayMs); // inherited by the server and its scripts
  const sessionMs = 5000;
  // The server runs with the inspector on loopback so the soak can force a full GC: RSS right
  // after one is what the server really holds, while RSS between collections follows V8's
  // sawtooth (the heap in use swings by a few hundred MB within a minute under this load).
  const inspectPort = await freePort();
  const nodeArgs = process.env.BENCH_NODE_ARGS;
  process.env.BENCH_NODE_ARGS = `${nodeArgs ?? ''} --inspect=127.0.0.1:${inspectPort}`.trim();
  const srv: AggregatorProcess = await startAggregator({
    'aggregator.script.suppliers': '/usr/bin/php -d display_errors=stderr script/suppliers.php',
    'aggregator.script.items': '/usr/bin/php -d display_errors=stderr script/items.php',
    'aggregator.fields.request': 'code,brand,apikey,analog',
    'aggregator.fields.faulty': 'code,brand,analog',
    'aggregator.timeout.script': 1,
    'aggregator.timeout.session': sessionMs / 1000,
    'aggregator.timeout.kill': 0.5,
    'aggregator.pool.executor': o.pool,
    'logging.level.me.blzr.aggregator': 'info',
  }).finally(() => {
    if (nodeArgs === undefined) delete process.env.BENCH_NODE_ARGS;
    else process.env.BENCH_NODE_ARGS = nodeArgs;
  });
  const inspector = await openInspector(inspectPort);
  const machine = `${os.cpus().length} cpu ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GB, ${os.type()} ${os.release()}, node ${process.version}, load at start ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`;
  say(`soak: ${o.clients} clients for ${o.seconds} s against pid ${srv.pid} (${machine})`);

  const failures: string[] = [];
  const invariantBreaks: string[] = [];
  const outcomes: Record<string, number> = {};
  const samples: Sample[] = [];
  let searches = 0;
  let statsPolls = 0;
  // Our own requests close their connections (see get()), so a short settle is enough.
  const SETTLE_MS = 500;
  await sleep(SETTLE_MS);
  const fdsIdleBefore = fdCount(srv.pid);
  const targetsBefore = fdTargets(srv.pid);
  const rssStart = rssBytes(srv.pid) / 2 ** 20;

  const started = Date.now();
  const until = started + o.seconds * 1000;
  let sampling = true;
  // /stats (checked on every answer) is polled on its own, as fast as the busy server answers;
  // the per-second sample reads /proc at once and takes the latest /stats and heap figures, so
  // a slow answer delays neither the sample nor the next poll.
  let latest: { s: Record<string, number | string>; heapMb: number } | undefined;
  const poller = (async () => {
    while (sampling) {
      const t = (Date.now() - started) / 1000;
      try {
        const [s, heapMb] = await Promise.all([stats(srv), heapUsedMb(srv.httpBase)]);
        for (const b of statsBreaks(s)) if (invariantBreaks.length < 50) invariantBreaks.push(`t=${t.toFixed(0)}s /stats: ${b}`);
        latest = { s, heapMb };
        statsPolls++;
      } catch (err) {
        failures.push(`t=${t.toFixed(0)}s: /stats failed: ${String(err)}`);
      }
      await sleep(200);
    }
  })();
  const tick = () => {
    if (!latest) return;
    const t = (Date.now() - started) / 1000;
    const fds = fdCount(srv.pid);
    const { s, heapMb } = latest;
    samples.push({
      t,
      rssMb: rssBytes(srv.pid) / 2 ** 20,
      heapMb,
      fds,
      fdsBase: fds - Number(s.sessionAlive),
      scripts: scriptsOf(srv.pid).length,
      sessionAlive: Number(s.sessionAlive),
      poolBusy: Number(s.poolBusy),
    });
    const last = samples.at(-1)!;
    if (o.progress && samples.length % 30 === 0)
      say(
        `  t=${t.toFixed(0)}s rss=${last.rssMb.toFixed(1)}MB heap=${last.heapMb.toFixed(1)}MB fds=${last.fds} (base ${last.fdsBase}) scripts=${last.scripts} sessions=${last.sessionAlive} searches=${searches}`,
      );
  };
  const ticker = setInterval(tick, 1000);
  // Every GC_EVERY_MS a full GC in the server, then its RSS: the figure judged for flatness.
  const gcSamples: { t: number; rssMb: number }[] = [];
  const gcLoop = (async () => {
    while (sampling) {
      await sleep(GC_EVERY_MS);
      if (!sampling) break;
      try {
        await inspector.collectGarbage();
        gcSamples.push({ t: (Date.now() - started) / 1000, rssMb: rssBytes(srv.pid) / 2 ** 20 });
      } catch (err) {
        failures.push(`forced GC failed: ${String(err)}`);
        break;
      }
    }
  })();
  const sampler = Promise.all([poller, gcLoop]).finally(() => clearInterval(ticker));

  await Promise.all(
    Array.from({ length: o.clients }, async () => {
      while (Date.now() < until) {
        const res = await round(srv.wsBase, pick(BEHAVIOURS), pick(SCENARIOS), sessionMs);
        searches++;
        outcomes[res.outcome] = (outcomes[res.outcome] ?? 0) + 1;
        for (const b of res.breaks) if (invariantBreaks.length < 50) invariantBreaks.push(b);
      }
    }),
  );

  // At rest: every session and script must be gone, and the descriptors back where they began.
  const restUntil = Date.now() + 15000;
  let rest = await stats(srv);
  while ((Number(rest.sessionAlive) > 0 || Number(rest.poolBusy) > 0 || scriptsOf(srv.pid).length > 0) && Date.now() < restUntil) {
    await sleep(100);
    rest = await stats(srv);
  }
  sampling = false;
  await sampler;
  await sleep(SETTLE_MS);
  const fdsIdleAfter = fdCount(srv.pid);
  const fdsGained = fdTargets(srv.pid);
  for (const t of targetsBefore) {
    const i = fdsGained.indexOf(t);
    if (i >= 0) fdsGained.splice(i, 1);
  }
  const leftAtRest = scriptsOf(srv.pid).length;
  const pid = srv.pid;
  const exitStarted = Date.now();
  inspector.close();
  await srv.stop();
  const serverExit = `stopped with SIGTERM in ${Date.now() - exitStarted} ms`;
  await sleep(1500); // the strays sweep and the launcher have had their chance
  const leftAfterExit = scriptsOf(pid).length;

  // Flatness: the median of the first fifth after warm-up against the median of the last fifth.
  // Descriptors are judged without those of the sessions open at that moment (they follow the
  // load, not a leak); at rest they are compared exactly.
  const judged = samples.filter((s) => s.t >= o.warmupSeconds && s.t <= o.seconds);
  const win = Math.max(5, Math.floor(judged.length / 5));
  const first = judged.slice(0, win);
  const lastWin = judged.slice(-win);
  const judgedGc = gcSamples.filter((s) => s.t >= o.warmupSeconds && s.t <= o.seconds);
  const gcWin = Math.max(2, Math.floor(judgedGc.length / 5));
  // The lowest of each window: RSS after a GC still moves in steps of ~20 MB (V8's young
  // generation committed or not), and what a leak raises is the floor.
  const rssBase = Math.min(...judgedGc.slice(0, gcWin).map((s) => s.rssMb));
  const rssFinal = Math.min(...judgedGc.slice(-gcWin).map((s) => s.rssMb));
  const fdBase = median(first.map((s) => s.fdsBase));
  const fdFinal = median(lastWin.map((s) => s.fdsBase));
  const rssChange = (rssFinal - rssBase) / rssBase;
  // Relative to all the descriptors open under load (a base of ~20 would make ±10% one descriptor).
  const fdsUnderLoad = median(first.map((s) => s.fds));
  const fdChange = (fdFinal - fdBase) / fdsUnderLoad;

  if (judged.length < 2 * win) failures.push(`too few samples after warm-up (${judged.length})`);
  if (judgedGc.length < 2 * gcWin) failures.push(`too few forced-GC samples after warm-up (${judgedGc.length})`);
  if (!(Math.abs(rssChange) <= o.tolerance))
    failures.push(`RSS after GC not flat: ${rssBase.toFixed(1)} → ${rssFinal.toFixed(1)} MB (${(rssChange * 100).toFixed(1)}%)`);
  if (!(Math.abs(fdChange) <= o.tolerance))
    failures.push(`descriptors not flat under load: ${fdBase} → ${fdFinal} of ${fdsUnderLoad} (${(fdChange * 100).toFixed(1)}%)`);
  if (fdsIdleAfter > fdsIdleBefore + 2) failures.push(`descriptors at rest grew: ${fdsIdleBefore} → ${fdsIdleAfter}`);
  if (Number(rest.sessionAlive) > 0 || Number(rest.poolBusy) > 0) failures.push(`not at rest after the load: ${JSON.stringify(rest)}`);
  if (leftAtRest > 0) failures.push(`${leftAtRest} script processes left at rest`);
  if (leftAfterExit > 0) failures.push(`${leftAfterExit} script processes left after the server exited`);
  if (invariantBreaks.length > 0) failures.push(`${invariantBreaks.length} invariant breaks (first: ${invariantBreaks[0]})`);
  if (searches === 0) failures.push('no search ran');

  return {
    ok: failures.length === 0,
    failures,
    machine,
    options: o,
    searches,
    outcomes,
    samples,
    gcSamples,
    rss: {
      startMb: rssStart,
      firstMedianMb: median(first.map((s) => s.rssMb)),
      lastMedianMb: median(lastWin.map((s) => s.rssMb)),
      baselineMb: rssBase,
      finalMb: rssFinal,
      maxMb: Math.max(...samples.map((s) => s.rssMb)),
      change: rssChange,
    },
    fdsGained,
    heap: {
      baselineMb: median(first.map((s) => s.heapMb)),
      finalMb: median(lastWin.map((s) => s.heapMb)),
      maxMb: Math.max(...samples.map((s) => s.heapMb)),
    },
    fds: {
      idleBefore: fdsIdleBefore,
      idleAfter: fdsIdleAfter,
      underLoad: fdsUnderLoad,
      baseline: fdBase,
      final: fdFinal,
      max: Math.max(...samples.map((s) => s.fds)),
      change: fdChange,
    },
    scripts: { max: Math.max(...samples.map((s) => s.scripts)), leftAtRest, leftAfterExit },
    invariantBreaks,
    statsChecks: statsPolls,
    serverExit,
    clientRssMb: process.memoryUsage().rss / 2 ** 20,
  };
}

export function formatSummary(s: SoakSummary): string {
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
  const lines = [
    `soak ${s.ok ? 'PASSED' : 'FAILED'}: ${s.options.clients} clients, ${s.options.seconds} s (warm-up ${s.options.warmupSeconds} s, tolerance ±${s.options.tolerance * 100}%)`,
    `machine: ${s.machine}`,
    `searches: ${s.searches} (${(s.searches / s.options.seconds).toFixed(1)}/s)`,
    `RSS MB after a forced GC (lowest of the first and last fifth): ${s.rss.baselineMb.toFixed(1)} → ${s.rss.finalMb.toFixed(1)} (${pct(s.rss.change)}); ${s.gcSamples.length} GCs, ${Math.min(...s.gcSamples.map((g) => g.rssMb)).toFixed(0)}–${Math.max(...s.gcSamples.map((g) => g.rssMb)).toFixed(0)} MB`,
    `RSS MB every second: start ${s.rss.startMb.toFixed(1)}, median after warm-up ${s.rss.firstMedianMb.toFixed(1)}, at the end ${s.rss.lastMedianMb.toFixed(1)}, max ${s.rss.maxMb.toFixed(1)}`,
    `V8 heap used MB: after warm-up ${s.heap.baselineMb.toFixed(1)}, end ${s.heap.finalMb.toFixed(1)}, max ${s.heap.maxMb.toFixed(1)}`,
    `descriptors: at rest ${s.fds.idleBefore} → ${s.fds.idleAfter}; under load ${s.fds.underLoad} (max ${s.fds.max}), of which not following the load ${s.fds.baseline} → ${s.fds.final} (${pct(s.fds.change)} of all)`,
    ...(s.fdsGained.length > 0 ? [`descriptors gained at rest: ${s.fdsGained.join(', ')}`] : []),
    `script processes: max ${s.scripts.max} at once, ${s.scripts.leftAtRest} left at rest, ${s.scripts.leftAfterExit} left after exit`,
    `invariant breaks: ${s.invariantBreaks.length} (${s.statsChecks} /stats answers and every search's frames checked)`,
    `server: ${s.serverExit}`,
    'outcomes:',
    ...Object.entries(s.outcomes)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `  ${String(v).padStart(7)}  ${k}`),
  ];
  if (s.failures.length > 0) lines.push('failures:', ...s.failures.map((f) => `  - ${f}`));
  return lines.join('\n');
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const seconds = arg('seconds') ? Number(arg('seconds')) : Number(arg('minutes') ?? 10) * 60;
  const opts: Partial<SoakOptions> = {
    seconds,
    clients: Number(arg('clients') ?? DEFAULTS.clients),
    warmupSeconds: Number(arg('warmup') ?? Math.min(DEFAULTS.warmupSeconds, Math.max(5, seconds / 5))),
    tolerance: Number(arg('tolerance') ?? DEFAULTS.tolerance),
    demoDelayMs: Number(arg('delay') ?? DEFAULTS.demoDelayMs),
    pool: Number(arg('pool') ?? DEFAULTS.pool),
  };
  const summary = await runSoak(opts);
  process.stdout.write(`${formatSummary(summary)}\n`);
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exit(summary.ok ? 0 : 1);
}
