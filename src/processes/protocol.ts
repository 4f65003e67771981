// What a script run is, for everyone who starts one (src/script-actor.ts, src/echo.ts), for the
// runner that supervises it (runner.ts) and for the channel to the launcher process that runs
// it for the server (link.ts ⇄ launcher.ts): the options, the result, and the messages.
import type { Command } from '../command.js';
import type { RunnerName } from './starter.js';

export interface RunLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** The part of a run that crosses to the launcher: plain data. */
export interface RunSpec {
  command: Command;
  /** One line of JSON; the runner adds the '\n' and then closes stdin. */
  input: string;
  timeoutMs: number;
  killAfterMs: number;
  maxOutputBytes: number;
  maxStderrBytes?: number;
  /** Added to the environment the script inherits (AGGREGATOR_SESSION, AGGREGATOR_TASK_ID). */
  env?: Record<string, string>;
}

export interface RunOptions extends RunSpec {
  /** Abort = the task was dropped: the group is killed and `cancelled` is set. */
  signal?: AbortSignal;
  onSpawn?: (pid: number) => void;
  log?: RunLog;
  /**
   * Where stdout goes as it arrives; when unset it is collected into the result. `flow` pauses
   * the script's stdout (it then blocks on a full pipe) while the consumer is behind.
   */
  onStdout?: (chunk: Buffer, flow: StdoutFlow) => void;
}

export interface StdoutFlow {
  pause(): void;
  resume(): void;
}

export type ScriptFailure = 'E_SCRIPT_START' | 'E_SCRIPT_ERROR' | 'E_SCRIPT_TIMEOUT';

export type RunResult =
  /** stdout crossed as bytes and is decoded as UTF-8 once, here (invalid bytes become U+FFFD). */
  | { ok: true; stdout: string; pid: number; durationMs: number; runner?: RunnerName }
  | { ok: false; code: ScriptFailure; reason: string; cancelled: boolean; pid?: number; durationMs: number; runner?: RunnerName };

/** One script run, wherever it happens (in this process, or through the launcher). */
export type RunScript = (opts: RunOptions) => Promise<RunResult>;

export const cancelledBeforeStart = (): RunResult => ({
  ok: false,
  code: 'E_SCRIPT_ERROR',
  reason: 'cancelled before start',
  cancelled: true,
  durationMs: 0,
});

// The launcher channel: Node IPC with `serialization: 'advanced'`, so stdout travels as bytes
// (a Buffer per chunk), never re-encoded as JSON text. One `run` per script; the launcher
// answers `started` once the process exists, `out` per stdout chunk, `log` for what the runner
// would log, and one `done` (whose ok result carries no stdout: the chunks came before it).

export interface RunRequest extends RunSpec {
  t: 'run';
  id: number;
}

export type LauncherRequest = RunRequest | { t: 'cancel'; id: number };

// `ready` comes first: a message that arrives before the launcher listens would be lost (its
// modules load asynchronously), so requests wait for it. `warm` says how many warm PHP parents
// were started to replace one that died, whenever that changes.
export type LauncherReply =
  | { t: 'ready' }
  | { t: 'warm'; restarts: number }
  | { t: 'started'; id: number; pid: number }
  | { t: 'out'; id: number; chunk: Buffer }
  | { t: 'log'; id: number; level: 'debug' | 'warn'; obj: object; msg: string }
  | { t: 'done'; id: number; result: RunResult };

export function runRequest(id: number, o: RunSpec): RunRequest {
  const { command, input, timeoutMs, killAfterMs, maxOutputBytes, maxStderrBytes, env } = o;
  return { t: 'run', id, command, input, timeoutMs, killAfterMs, maxOutputBytes, maxStderrBytes, env };
}

/** argv of the launcher: KILL_MS OWNER_TAG LOG_FILE RUNNER (the tag and file may be empty). */
export function launcherArgs(killMs: number, owner = '', logFile = '', runner = 'spawn'): string[] {
  return [String(killMs), owner, logFile, runner];
}
