// Runs one script: its own process group, one JSON line on stdin, bounded stdout and stderr,
// a timeout from process start, and a stepped kill (SIGTERM to the group, SIGKILL after
// timeout.kill). Launching is kept apart from lifetime: the caller only sees the result.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Command } from './command.js';
import { killGroup, trackGroup, untrackGroup } from './process-groups.js';
import { tagRun } from './strays.js';

export interface RunLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RunOptions {
  command: Command;
  /** One line of JSON; the runner adds the '\n' and then closes stdin. */
  input: string;
  timeoutMs: number;
  killAfterMs: number;
  maxOutputBytes: number;
  maxStderrBytes?: number;
  env?: Record<string, string>;
  /** The environment scripts inherit, `env` added on top; default process.env (read per run). */
  baseEnv?: NodeJS.ProcessEnv;
  /** Abort = the task was dropped: the group is killed and `cancelled` is set. */
  signal?: AbortSignal;
  onSpawn?: (pid: number) => void;
  log?: RunLog;
}

export type ScriptFailure = 'E_SCRIPT_START' | 'E_SCRIPT_ERROR' | 'E_SCRIPT_TIMEOUT';

export type RunResult =
  | { ok: true; stdout: string; pid: number; durationMs: number }
  | { ok: false; code: ScriptFailure; reason: string; cancelled: boolean; pid?: number; durationMs: number };

/** runScript's shape: the launcher (src/launcher-link.ts) runs scripts behind the same one. */
export type RunScript = (opts: RunOptions) => Promise<RunResult>;

const DEFAULT_STDERR_BYTES = 64 * 1024;

export async function runScript(opts: RunOptions): Promise<RunResult> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  if (opts.signal?.aborted) {
    return { ok: false, code: 'E_SCRIPT_ERROR', reason: 'cancelled before start', cancelled: true, durationMs: 0 };
  }
  // Plain child_process.spawn: execa cost about 3x the CPU per start (bench/01-throughput),
  // and what it adds (buffering, timeout, kill) this function does itself.
  let sub: ChildProcess;
  // Descendants that leave the process group (setsid) still carry this tag (src/strays.ts).
  const tag = tagRun();
  try {
    sub = spawn(opts.command.file, [...opts.command.args], {
      detached: true, // own process group, so the kill reaches grandchildren
      env: { ...(opts.baseEnv ?? process.env), ...opts.env, ...tag.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    tag.retire();
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, code: 'E_SCRIPT_START', reason: String(code ?? err), cancelled: false, durationMs: elapsed() };
  }
  // Settles when the process is gone and its pipes are closed, or at once when it never started.
  const closed = new Promise<{ exitCode: number | null; signal: NodeJS.Signals | null; startError?: string }>((resolve) => {
    sub.on('error', (err: NodeJS.ErrnoException) => {
      if (sub.pid === undefined) resolve({ exitCode: null, signal: null, startError: String(err.code ?? err.message) });
    });
    sub.once('close', (exitCode: number | null, signal: NodeJS.Signals | null) => resolve({ exitCode, signal }));
  });
  // A script that never reads stdin, or closes it early, must not break us (EPIPE).
  sub.stdin?.on('error', () => {});
  sub.stdin?.end(`${opts.input}\n`);
  const pid = sub.pid;
  if (pid === undefined) {
    tag.retire();
    const res = await closed;
    return { ok: false, code: 'E_SCRIPT_START', reason: res.startError ?? 'spawn failed', cancelled: false, durationMs: elapsed() };
  }
  trackGroup(pid);
  opts.onSpawn?.(pid);

  let timedOut = false;
  let cancelled = false;
  let oversize = false;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (killTimer) return;
    killGroup(pid, 'SIGTERM');
    killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), opts.killAfterMs);
  };
  let exited = false;
  // After an event-loop stall, expired timers run before pending I/O: look at the exit first
  // (setImmediate runs after the poll phase), so a script that finished in time isn't timed out.
  const scriptTimer = setTimeout(
    () =>
      setImmediate(() => {
        if (exited) return;
        timedOut = true;
        stop();
      }),
    opts.timeoutMs,
  );
  const onAbort = () => {
    cancelled = true;
    stop();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const out: Buffer[] = [];
  let outBytes = 0;
  sub.stdout?.on('data', (chunk: Buffer) => {
    if (oversize) return;
    outBytes += chunk.length;
    if (outBytes > opts.maxOutputBytes) {
      oversize = true;
      out.length = 0;
      stop();
    } else out.push(chunk);
  });
  const err: Buffer[] = [];
  let errBytes = 0;
  const maxErr = opts.maxStderrBytes ?? DEFAULT_STDERR_BYTES;
  sub.stderr?.on('data', (chunk: Buffer) => {
    if (errBytes < maxErr) err.push(chunk.subarray(0, maxErr - errBytes));
    errBytes += chunk.length;
  });
  // Once the leader is gone, whatever is left of its group (a grandchild holding stdout)
  // is killed at once; otherwise the pipe would keep the task open.
  // A stray outside the group (a setsid daemon) may hold stdout too: it is swept soon after
  // `retire`, and past a grace of timeout.kill we stop waiting for the pipes anyway (the
  // setImmediate lets what the script wrote before it exited be read first).
  let release: NodeJS.Timeout | undefined;
  sub.once('exit', () => {
    exited = true;
    killGroup(pid, 'SIGKILL');
    untrackGroup(pid);
    tag.retire();
    release = setTimeout(
      () =>
        setImmediate(() => {
          sub.stdout?.destroy();
          sub.stderr?.destroy();
        }),
      opts.killAfterMs,
    );
  });

  const res = await closed;
  clearTimeout(scriptTimer);
  clearTimeout(release);
  if (killTimer) clearTimeout(killTimer);
  opts.signal?.removeEventListener('abort', onAbort);
  // Node emits 'exit' before 'close', so the exit handler has already killed what was left of
  // the group and retired the tag; repeat it only if it somehow did not run.
  if (!exited) {
    killGroup(pid, 'SIGKILL');
    untrackGroup(pid);
    tag.retire();
  }

  if (errBytes > 0 && opts.log) {
    const stderr = Buffer.concat(err).toString('utf8');
    opts.log.debug({ pid, stderr, stderrBytes: errBytes }, 'script stderr');
  }
  const durationMs = elapsed();
  const fail = (code: ScriptFailure, reason: string): RunResult => ({ ok: false, code, reason, cancelled, pid, durationMs });
  if (cancelled) return fail('E_SCRIPT_ERROR', 'cancelled');
  if (timedOut) return fail('E_SCRIPT_TIMEOUT', `ran past ${opts.timeoutMs} ms`);
  if (oversize) return fail('E_SCRIPT_ERROR', `stdout over ${opts.maxOutputBytes} bytes`);
  if (res.signal) return fail('E_SCRIPT_ERROR', `killed by ${res.signal}`);
  if (res.exitCode !== 0) return fail('E_SCRIPT_ERROR', `exit code ${String(res.exitCode)}`);
  return { ok: true, stdout: Buffer.concat(out).toString('utf8'), pid, durationMs };
}
