// How a script process is made (aggregator.script.runner), kept apart from how it is
// supervised (runner.ts): a starter only makes the process; timeouts, kills, output caps and
// tags are the runner's, the same whichever starter made it.
import type { Readable, Writable } from 'node:stream';
import type { Command } from '../command.js';

/** How a script ended: its exit code, or the signal that killed it; `lost` when nobody can know (e.g. the warm parent died). */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  lost?: string;
}

export type RunnerName = 'spawn' | 'warm';

export interface StartedScript {
  /** Leads its own session and process group (setsid), as spawn's `detached: true` does. */
  readonly pid: number;
  /** How it was made (a warm starter may hand a command to spawn). */
  readonly runner: RunnerName;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Settles (never rejects) once the process has exited. */
  readonly exited: Promise<ExitStatus>;
}

export type StartResult = { ok: true; script: StartedScript } | { ok: false; reason: string };

/** How a script process is made (aggregator.script.runner). */
export interface ScriptStarter {
  readonly name: RunnerName;
  start(command: Command, env: NodeJS.ProcessEnv): Promise<StartResult>;
  /** Stops what the starter keeps (warm parents); scripts already started are the runner's. */
  close(): Promise<void>;
}
