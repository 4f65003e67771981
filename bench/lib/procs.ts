// Child processes the benchmarks start: the real aggregator (`node dist/main.js`, its own
// process so its RSS and CPU are its own), and helpers to read a process's memory from /proc.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { livePids } from '../../src/processes/reaper.js';

export const ROOT = PACKAGE_ROOT;
export const PHP = '/usr/bin/php';
export const SCRIPTS = path.join(ROOT, 'bench', 'scripts');
export const SUPPLIERS_PHP = path.join(SCRIPTS, 'suppliers.php');
export const ITEMS_PHP = path.join(SCRIPTS, 'items.php');

/** A free loopback port (for programs that cannot listen on port 0 and tell us). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** KB from /proc/PID/status (VmRSS = now, VmHWM = peak); 0 when the process is gone. */
export function procKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** CPU time (user + system) the process used so far, in ms; 0 when it is gone. */
export function procCpuMs(pid: number): number {
  try {
    // Fields after the ")" of the command name: state is field 3, utime 14, stime 15.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
/** pids of the direct children of `pid` (from /proc). */
export function childPids(pid: number): number[] {
  return livePids((p) => p.stat()?.ppid === pid);
}

/**
 * The server's helper processes: its script launcher and the warm PHP parents the launcher
 * keeps (not the scripts themselves, which come and go).
 */
export function helperPids(serverPid: number): number[] {
  const launcher = launcherOf(serverPid);
  if (launcher === undefined) return [];
  return [launcher, ...livePids((p) => p.stat()?.ppid === launcher && p.cmdline().includes('warm-parent'))];
}

/** RSS of the server plus its helper processes, in KB. */
export function withHelpersKb(serverPid: number): number {
  return [serverPid, ...helperPids(serverPid)].reduce((kb, pid) => kb + procKb(pid, 'VmRSS'), 0);
}

/** The server's script launcher (src/processes/launcher.ts): its one child running node. */
export function launcherOf(pid: number): number | undefined {
  return childPids(pid).find((c) => {
    try {
      return fs.readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('launcher.js');
    } catch {
      return false;
    }
  });
}

// USER_HZ is 100 on every Linux this runs on (getconf CLK_TCK).
const CLOCK_TICKS = 100;

/** Marks every process this benchmark run starts (and what they start), to find leftovers. */
export const RUN_MARK = `AGGREGATOR_BENCH_RUN=${process.pid}.${Date.now()}`;

/** The environment for children: without NODE_OPTIONS (tap puts its loaders there), marked. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const [name = '', value = ''] = RUN_MARK.split('=');
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, [name]: value };
  delete env.NODE_OPTIONS;
  return env;
}

/** Live processes carrying this run's mark in their environment (zombies excluded). */
export function markedProcesses(): number[] {
  const [name = '', value = ''] = RUN_MARK.split('=');
  return livePids((p) => p.env(name) === value);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `url` until it answers 200, the child exits, or `ms` pass. */
async function waitHealthy(url: string, child: ChildProcess, ms: number, stderr: () => string): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${url}: process exited early: ${stderr()}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url}: no answer within ${ms} ms: ${stderr()}`);
    await sleep(50);
  }
}

/** Ends a child: SIGTERM, then SIGKILL if it is still there after `ms`. */
export async function stopChild(child: ChildProcess, ms = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(timer);
}

export interface AggregatorProcess {
  readonly pid: number;
  readonly port: number;
  readonly wsBase: string;
  readonly httpBase: string;
  rssKb(): number;
  peakKb(): number;
  /** CPU of the server and its helpers (launcher, warm PHP parents), not of the scripts. */
  cpuMs(): number;
  /** pids of its warm PHP parents now (a /proc scan: not for a tight loop). */
  warmParents(): number[];
  /** Peak RSS of the script launcher, KB. */
  launcherPeakKb(): number;
  stats(): Promise<Record<string, number | string>>;
  stop(): Promise<void>;
}

/** Bench fixture scripts and the request fields they read (n, sleep, items). */
export const BENCH_SCRIPTS = {
  'aggregator.script.suppliers': `${PHP} -d display_errors=stderr ${SUPPLIERS_PHP}`,
  'aggregator.script.items': `${PHP} -d display_errors=stderr ${ITEMS_PHP}`,
  'aggregator.fields.request': 'n,sleep,items',
  'aggregator.fields.faulty': 'n',
};

/**
 * Starts `node dist/main.js -Dkey=value...` on a free loopback port, logs to a temp folder,
 * stdout (the journal copy of the log) discarded.
 */
export async function startAggregator(options: Record<string, string | number | boolean>): Promise<AggregatorProcess> {
  // BENCH_MAIN runs another build (an older checkout, for before/after figures).
  const main = process.env.BENCH_MAIN ?? path.join(ROOT, 'dist', 'main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
  const port = await freePort();
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-bench-'));
  const argv = Object.entries({
    'server.port': port,
    'server.address': '127.0.0.1',
    'logging.file.path': logDir,
    ...BENCH_SCRIPTS,
    ...options,
  }).map(([k, v]) => `-D${k}=${String(v)}`);
  // For profiling by hand: BENCH_CPU_PROF=DIR, or any node flags in BENCH_NODE_ARGS.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const prof = process.env.BENCH_CPU_PROF;
  if (prof) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${prof}`);
  const child = spawn(process.execPath, [...nodeArgs, main, ...argv], {
    cwd: process.env.BENCH_MAIN ? path.dirname(path.dirname(main)) : ROOT,
    env: cleanEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString('utf8');
  });
  const pid = child.pid;
  const httpBase = `http://127.0.0.1:${port}`;
  const cleanup = () => fs.rmSync(logDir, { recursive: true, force: true });
  try {
    if (pid === undefined) throw new Error('could not start node dist/main.js');
    await waitHealthy(`${httpBase}/health`, child, 15000, () => stderr);
  } catch (err) {
    await stopChild(child);
    cleanup();
    throw err;
  }
  return {
    pid,
    port,
    wsBase: `ws://127.0.0.1:${port}`,
    httpBase,
    rssKb: () => procKb(pid, 'VmRSS'),
    peakKb: () => procKb(pid, 'VmHWM'),
    cpuMs: () => [pid, ...helperPids(pid)].reduce((ms, p) => ms + procCpuMs(p), 0),
    warmParents: () => helperPids(pid).slice(1),
    launcherPeakKb: () => {
      const launcher = launcherOf(pid);
      return launcher === undefined ? 0 : procKb(launcher, 'VmHWM');
    },
    stats: async () => (await (await fetch(`${httpBase}/stats`)).json()) as Record<string, number | string>,
    async stop() {
      await stopChild(child);
      cleanup();
    },
  };
}

