// The messages between the aggregator (src/launcher-link.ts) and its script launcher process
// (src/launcher.ts), over Node's IPC channel (JSON). One `run` per script; the launcher answers
// `started` once the process exists, `log` for what the runner would log, and one `done`.
import type { RunOptions, RunResult } from './runner.js';

/** What of a run crosses the channel: everything but the callbacks, the signal and baseEnv. */
export type RunSpec = Pick<RunOptions, 'command' | 'input' | 'timeoutMs' | 'killAfterMs' | 'maxOutputBytes' | 'maxStderrBytes' | 'env'>;

export interface RunRequest extends RunSpec {
  t: 'run';
  id: number;
}

export type LauncherRequest = RunRequest | { t: 'cancel'; id: number };

// `ready` comes first: a message that arrives before the launcher listens would be lost (its
// modules load asynchronously), so requests wait for it.
export type LauncherReply =
  | { t: 'ready' }
  | { t: 'started'; id: number; pid: number }
  | { t: 'log'; id: number; level: 'debug' | 'warn'; obj: object; msg: string }
  | { t: 'done'; id: number; result: RunResult };

export function runRequest(id: number, o: RunSpec): RunRequest {
  const { command, input, timeoutMs, killAfterMs, maxOutputBytes, maxStderrBytes, env } = o;
  return { t: 'run', id, command, input, timeoutMs, killAfterMs, maxOutputBytes, maxStderrBytes, env };
}

/** argv of the launcher: KILL_MS OWNER_TAG LOG_FILE (the last two may be empty). */
export function launcherArgs(killMs: number, owner = '', logFile = ''): string[] {
  return [String(killMs), owner, logFile];
}
