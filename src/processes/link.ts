// The aggregator's side of the script launcher (launcher.ts): start it, hand it every script
// run, and turn its replies back into the runner's result. `run` has runScript's signature and
// semantics (abort = stepped kill of the group, `cancelled` set), so callers do not know that
// the fork happens in another process. stdout arrives as bytes, chunk by chunk, and is joined
// once when the run is done. If the launcher dies, its runs fail (E_SCRIPT_ERROR), what it had
// started is killed, and the next run starts a new launcher.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.js';
import {
  type LauncherReply,
  type LauncherRequest,
  type RunOptions,
  type RunResult,
  type RunScript,
  type StdoutFlow,
  cancelledBeforeStart,
  launcherArgs,
  runRequest,
} from './protocol.js';
import { TAG_ENV, killGroup, killOwner, ownerTag } from './reaper.js';

export interface LauncherOptions {
  killMs: number;
  log: Logger;
  /**
   * The aggregator's owner tag (reaper.ts), which scripts carry: what a dead launcher leaves
   * is found by it. main.ts passes its own; otherwise each launcher gets one (tests run
   * several apps in one process).
   */
  owner?: string;
  /** Where the launcher reports, should the aggregator be gone. */
  logFile?: string;
  /** Defaults to launcher.js beside this module, or dist/src/processes/launcher.js when run from sources. */
  program?: string;
  /** How long past a run's own limits a silent launcher is waited for (default 5 s). */
  answerGraceMs?: number;
  /** node flags for the launcher; defaults to LAUNCHER_NODE_ARGS. */
  nodeArgs?: readonly string[];
  /** How the launcher makes script processes (aggregator.script.runner); default spawn. */
  runner?: 'warm' | 'spawn';
}

export interface Launcher {
  readonly run: RunScript;
  /** The launcher's pid, or undefined while none runs. */
  readonly pid: number | undefined;
  /** Runs handed over and not yet done. */
  readonly running: number;
  /** Times a launcher died or was killed as wedged while the aggregator ran (for /metrics). */
  readonly deaths: number;
  /** Warm PHP parents started to replace one that died, by every launcher so far (for /metrics). */
  readonly warmRestarts: number;
  /** Ends the link; the launcher stops what is left and exits. */
  stop(): void;
}

// The launcher allocates little but often: a 1 MB young generation keeps it at about 60 MB RSS
// instead of 90 MB after a few hundred scripts, at no measurable CPU cost (it forks slightly
// faster, having fewer written pages to copy); it needs no V8 worker threads either.
// --expose-gc: it collects the Buffers it relays (launcher.ts).
export const LAUNCHER_NODE_ARGS: readonly string[] = ['--max-semi-space-size=1', '--v8-pool-size=0', '--expose-gc'];

// The script's stdout is paused in the launcher (launcher.ts), not from here.
const PAUSED_IN_LAUNCHER: StdoutFlow = { pause() {}, resume() {} };

// A launcher that keeps dying is not restarted more often than this; runs then fail to start.
const MAX_DEATHS = 5;
const DEATH_WINDOW_MS = 60_000;

/** launcher.js beside this module (dist/src/processes/), else the built one when running from sources. */
export function launcherProgram(): string {
  const beside = fileURLToPath(new URL('./launcher.js', import.meta.url));
  if (fs.existsSync(beside)) return beside;
  const built = fileURLToPath(new URL('../../dist/src/processes/launcher.js', import.meta.url));
  if (fs.existsSync(built)) return built;
  throw new Error(`script launcher not found at ${beside} or ${built}: run "npm run build" first`);
}

interface Pending {
  opts: RunOptions;
  started: number;
  pid?: number;
  /**
   * stdout so far as text, unless the caller takes it chunk by chunk (opts.onStdout): each chunk
   * is decoded as it comes and dropped, so an answer is held once as text, not as chunks plus
   * their concatenation plus the text.
   */
  out: string[];
  decoder: StringDecoder;
  resolve(result: RunResult): void;
  onAbort(): void;
  deadline: NodeJS.Timeout;
}

// A run ends by itself within timeout + 2 x timeout.kill (the runner's timeout, stepped kill and
// pipe release); a launcher that has not answered by then, and this much more, is wedged.
const ANSWER_GRACE_MS = 5000;

let launcherSeq = 0;

export function startLauncher(opts: LauncherOptions): Launcher {
  const program = opts.program ?? launcherProgram();
  const owner = opts.owner ?? ownerTag(`in-process-${++launcherSeq}`);
  const pending = new Map<number, Pending>();
  const deaths: number[] = []; // within DEATH_WINDOW_MS
  let deathsTotal = 0;
  // Each launcher's own count (a launcher that died keeps the count it last reported).
  const warmRestartsOf = new Map<ChildProcess, number>();
  let child: ChildProcess | undefined;
  // Requests wait here until the launcher says it listens.
  let waiting: LauncherRequest[] | undefined;
  let stopped = false;
  let seq = 0;

  const send = (c: ChildProcess, msg: LauncherRequest) => {
    if (c === child && waiting) waiting.push(msg);
    // A closed channel means the launcher died: its 'exit' settles the pending runs.
    else if (c.connected) c.send(msg, (err) => err && opts.log.debug({ err: err.message }, 'launcher channel closed'));
  };

  // The launcher only keeps us alive while runs are out (tests, a draining shutdown).
  const hold = (c: ChildProcess | undefined, on: boolean) => {
    if (on) {
      c?.ref();
      c?.channel?.ref();
    } else {
      c?.unref();
      c?.channel?.unref();
    }
  };

  const settle = (id: number, result: RunResult) => {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    clearTimeout(p.deadline);
    p.opts.signal?.removeEventListener('abort', p.onAbort);
    if (pending.size === 0) hold(child, false);
    p.resolve(result);
  };

  const onMessage = (c: ChildProcess, msg: LauncherReply) => {
    if (msg.t === 'ready') {
      const queued = c === child ? waiting : undefined;
      waiting = undefined;
      for (const m of queued ?? []) send(c, m);
      return;
    }
    if (msg.t === 'warm') {
      warmRestartsOf.set(c, msg.restarts);
      return;
    }
    const p = pending.get(msg.id);
    if (!p) return;
    if (msg.t === 'started') {
      p.pid = msg.pid;
      p.opts.onSpawn?.(msg.pid);
    } else if (msg.t === 'out') {
      if (p.opts.onStdout) p.opts.onStdout(msg.chunk, PAUSED_IN_LAUNCHER);
      else p.out.push(p.decoder.write(msg.chunk));
    } else if (msg.t === 'log') p.opts.log?.[msg.level](msg.obj, msg.msg);
    else if (msg.t === 'done') {
      const { result } = msg;
      if (result.ok) p.out.push(p.decoder.end());
      settle(msg.id, result.ok ? { ...result, stdout: p.out.join('') } : result);
    }
  };

  const onDeath = (c: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => {
    if (child !== c) return;
    child = undefined;
    waiting = undefined;
    const lost = [...pending.entries()];
    if (stopped && lost.length === 0) return;
    // Its scripts are orphans now, and nobody will read their output: kill them.
    for (const [, p] of lost) if (p.pid !== undefined) killGroup(p.pid, 'SIGKILL');
    killOwner(owner);
    if (!stopped) {
      deaths.push(Date.now());
      deathsTotal++;
      opts.log.error({ code, signal, runs: lost.length }, 'script launcher died: its scripts were killed and fail; a new one starts with the next script');
    }
    for (const [id, p] of lost) {
      const cancelled = p.opts.signal?.aborted ?? false;
      settle(id, { ok: false, code: 'E_SCRIPT_ERROR', reason: 'script launcher died', cancelled, pid: p.pid, durationMs: performance.now() - p.started });
    }
  };

  const launch = (): ChildProcess => {
    const env = { ...process.env };
    delete env[TAG_ENV]; // it is not one of our scripts: an orphan sweep must not kill it
    const c: ChildProcess = spawn(process.execPath, [...(opts.nodeArgs ?? LAUNCHER_NODE_ARGS), program, ...launcherArgs(opts.killMs, owner, opts.logFile, opts.runner)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      // Buffers cross as bytes; JSON would turn each stdout chunk into an array of numbers.
      serialization: 'advanced',
      detached: true, // own process group: a Ctrl-C to the aggregator's group does not reach it
      env,
    });
    waiting = [];
    c.on('message', (msg: LauncherReply) => onMessage(c, msg));
    c.on('error', (err) => opts.log.error({ err: err.message }, 'script launcher failed to start'));
    c.on('exit', (code, signal) => onDeath(c, code, signal));
    hold(c, false);
    opts.log.debug({ launcher: c.pid }, 'script launcher started');
    return c;
  };

  const available = (): ChildProcess | undefined => {
    if (child || stopped) return child;
    while (deaths.length > 0 && (deaths[0] ?? 0) < Date.now() - DEATH_WINDOW_MS) deaths.shift();
    if (deaths.length >= MAX_DEATHS) return undefined;
    child = launch();
    return child;
  };

  const run: RunScript = (o) => {
    if (o.signal?.aborted) return Promise.resolve(cancelledBeforeStart());
    const c = available();
    if (!c) return Promise.resolve({ ok: false, code: 'E_SCRIPT_START', reason: 'script launcher unavailable', cancelled: false, durationMs: 0 });
    const id = ++seq;
    return new Promise<RunResult>((resolve) => {
      const onAbort = () => send(c, { t: 'cancel', id });
      // Never wait on a wedged launcher (stopped, stuck): it is killed, and its runs end.
      const deadline = setTimeout(() => {
        if (child !== c) return;
        opts.log.error({ launcher: c.pid, task: o.env?.AGGREGATOR_TASK_ID }, 'script launcher did not answer in time: killing it');
        c.kill('SIGKILL');
      }, o.timeoutMs + 2 * o.killAfterMs + (opts.answerGraceMs ?? ANSWER_GRACE_MS));
      pending.set(id, { opts: o, started: performance.now(), out: [], decoder: new StringDecoder('utf8'), resolve, onAbort, deadline });
      if (pending.size === 1) hold(c, true);
      o.signal?.addEventListener('abort', onAbort, { once: true });
      send(c, runRequest(id, o));
    });
  };

  child = launch();
  return {
    run,
    get pid() {
      return child?.pid;
    },
    get running() {
      return pending.size;
    },
    get warmRestarts() {
      let n = 0;
      for (const v of warmRestartsOf.values()) n += v;
      return n;
    },
    get deaths() {
      return deathsTotal;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (child?.connected) child.disconnect();
    },
  };
}
