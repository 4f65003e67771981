// Supervises one script run, whichever starter made the process (spawn.ts, or a warm PHP
// parent): one JSON line on stdin, bounded stdout and stderr, a timeout from process start,
// and a stepped kill (SIGTERM to the group, SIGKILL after timeout.kill). Making the process is
// kept apart from its lifetime: the caller only sees the result.
import type { RunOptions, RunResult, ScriptFailure } from './protocol.js';
import { cancelledBeforeStart } from './protocol.js';
import { killGroup, tagRun, trackGroup, untrackGroup } from './reaper.js';
import { spawnStarter } from './spawn.js';
import type { ExitStatus, ScriptStarter } from './starter.js';

const DEFAULT_STDERR_BYTES = 64 * 1024;

export interface RunEnv {
  /** How the process is made; default spawn. */
  starter?: ScriptStarter;
  /** The environment scripts inherit, RunOptions.env added on top; default process.env (read per run). */
  baseEnv?: NodeJS.ProcessEnv;
}

export async function runScript(opts: RunOptions, how: RunEnv = {}): Promise<RunResult> {
  const startedAt = performance.now();
  const elapsed = () => performance.now() - startedAt;
  if (opts.signal?.aborted) return cancelledBeforeStart();
  // Descendants that leave the process group (setsid) still carry this tag (reaper.ts).
  const tag = tagRun();
  const started = await (how.starter ?? spawnStarter).start(opts.command, { ...(how.baseEnv ?? process.env), ...opts.env, ...tag.env });
  if (!started.ok) {
    tag.retire();
    return { ok: false, code: 'E_SCRIPT_START', reason: started.reason, cancelled: false, durationMs: elapsed() };
  }
  const { pid, runner, stdin, stdout, stderr } = started.script;
  trackGroup(pid);
  opts.onSpawn?.(pid);

  // Settles when the process is gone and its pipes are closed.
  let exit: ExitStatus | undefined;
  const pipesClosed = Promise.all([stdout, stderr].map((s) => new Promise<void>((r) => s.once('close', () => r()))));
  const closed = Promise.all([started.script.exited, pipesClosed]).then(([status]) => status);

  // A script that never reads stdin, or closes it early, must not break us (EPIPE).
  stdin.on('error', () => {});
  stdin.end(`${opts.input}\n`);

  let timedOut = false;
  let cancelled = false;
  let oversize = false;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (killTimer) return;
    killGroup(pid, 'SIGTERM');
    killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), opts.killAfterMs);
  };
  // After an event-loop stall, expired timers run before pending I/O: look at the exit first
  // (setImmediate runs after the poll phase), so a script that finished in time isn't timed out.
  const scriptTimer = setTimeout(
    () =>
      setImmediate(() => {
        if (exit) return;
        timedOut = true;
        stop();
      }),
    opts.timeoutMs,
  );
  const onAbort = () => {
    cancelled = true;
    stop();
  };
  // The abort may have come while the process was being made (a warm start is not instant).
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });

  const out: Buffer[] = [];
  let outBytes = 0;
  const flow = { pause: () => stdout.pause(), resume: () => stdout.resume() };
  stdout.on('error', () => {});
  stdout.on('data', (chunk: Buffer) => {
    if (oversize) return;
    outBytes += chunk.length;
    if (outBytes > opts.maxOutputBytes) {
      oversize = true;
      out.length = 0;
      stop();
    } else if (opts.onStdout) opts.onStdout(chunk, flow);
    else out.push(chunk);
  });
  const err: Buffer[] = [];
  let errBytes = 0;
  const maxErr = opts.maxStderrBytes ?? DEFAULT_STDERR_BYTES;
  stderr.on('error', () => {});
  stderr.on('data', (chunk: Buffer) => {
    if (errBytes < maxErr) err.push(chunk.subarray(0, maxErr - errBytes));
    errBytes += chunk.length;
  });
  // Once the leader is gone, whatever is left of its group (a grandchild holding stdout) is
  // killed at once; otherwise the pipe would keep the task open. A stray outside the group (a
  // setsid daemon) may hold stdout too: it is swept soon after `retire`, and past a grace of
  // timeout.kill we stop waiting for the pipes anyway (the setImmediate lets what the script
  // wrote before it exited be read first).
  let release: NodeJS.Timeout | undefined;
  void started.script.exited.then((status) => {
    exit = status;
    killGroup(pid, 'SIGKILL');
    untrackGroup(pid);
    tag.retire();
    release = setTimeout(
      () =>
        setImmediate(() => {
          stdout.destroy();
          stderr.destroy();
        }),
      opts.killAfterMs,
    );
  });

  const res = await closed;
  clearTimeout(scriptTimer);
  clearTimeout(release);
  if (killTimer) clearTimeout(killTimer);
  opts.signal?.removeEventListener('abort', onAbort);

  if (errBytes > 0 && opts.log) {
    const text = Buffer.concat(err).toString('utf8');
    opts.log.debug({ pid, stderr: text, stderrBytes: errBytes }, 'script stderr');
  }
  const durationMs = elapsed();
  const fail = (code: ScriptFailure, reason: string): RunResult => ({ ok: false, code, reason, cancelled, pid, durationMs, runner });
  if (cancelled) return fail('E_SCRIPT_ERROR', 'cancelled');
  if (timedOut) return fail('E_SCRIPT_TIMEOUT', `ran past ${opts.timeoutMs} ms`);
  if (oversize) return fail('E_SCRIPT_ERROR', `stdout over ${opts.maxOutputBytes} bytes`);
  if (res.lost) return fail('E_SCRIPT_ERROR', res.lost);
  if (res.signal) return fail('E_SCRIPT_ERROR', `killed by ${res.signal}`);
  if (res.code !== 0) return fail('E_SCRIPT_ERROR', `exit code ${String(res.code)}`);
  return { ok: true, stdout: Buffer.concat(out).toString('utf8'), pid, durationMs, runner };
}
