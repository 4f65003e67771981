// The aggregator's side of the guardian (src/guardian.ts): spawn it, tell it about every script
// process group as it starts and ends, and respawn it if it dies. If the aggregator itself is
// SIGKILLed, the kernel closes our end of the pipe and the guardian kills the registered groups.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from './logger.js';
import { OWNER_ENV } from './orphans.js';
import { liveGroups, onGroupChange } from './process-groups.js';

export const GUARDIAN_PATH = fileURLToPath(new URL('./guardian.js', import.meta.url));
const MAX_RESPAWNS = 5;

export interface GuardianOptions {
  killMs: number;
  owner: string;
  logFile: string;
  log: Logger;
  /** Defaults to GUARDIAN_PATH (dist/src/guardian.js beside this module once built). */
  program?: string;
}

export interface GuardianLink {
  /** The guardian's pid, or undefined when none runs. */
  readonly pid: number | undefined;
  /** Ends the link on a clean exit (the guardian then finds no groups and exits). */
  stop(): void;
}

export function startGuardian(opts: GuardianOptions): GuardianLink {
  const program = opts.program ?? GUARDIAN_PATH;
  let child: ChildProcess | undefined;
  let stopped = false;
  let respawns = 0;
  if (!fs.existsSync(program)) {
    opts.log.warn({ program }, 'guardian program not found (run from dist/): scripts may outlive a SIGKILLed aggregator');
    return { pid: undefined, stop() {} };
  }
  const send = (line: string) => {
    if (child?.stdin?.writable) child.stdin.write(`${line}\n`);
  };

  const launch = () => {
    const env = { ...process.env };
    delete env[OWNER_ENV]; // it is not one of our scripts: an orphan sweep must not kill it
    const c = spawn(process.execPath, [program, String(opts.killMs), opts.owner, opts.logFile], {
      stdio: ['pipe', 'ignore', 'inherit'],
      detached: true, // own process group: a signal to the aggregator's group does not reach it
      env,
    });
    child = c;
    c.stdin?.on('error', () => {}); // EPIPE when it died: handled by 'exit'
    c.on('error', (err) => opts.log.error({ err: err.message }, 'guardian failed to start'));
    c.on('exit', (code, signal) => {
      if (stopped || child !== c) return;
      child = undefined;
      if (respawns >= MAX_RESPAWNS) {
        opts.log.error({ code, signal }, 'guardian died too often; not restarting it');
        return;
      }
      respawns++;
      opts.log.warn({ code, signal }, 'guardian died; restarting it');
      launch();
    });
    c.unref();
    // The pipe must not keep the event loop alive on its own.
    (c.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    for (const pgid of liveGroups()) send(`+${pgid}`);
    opts.log.debug({ guardian: c.pid }, 'guardian started');
  };

  const unsubscribe = onGroupChange((change, pgid) => send(`${change === 'added' ? '+' : '-'}${pgid}`));
  launch();
  return {
    get pid() {
      return child?.pid;
    },
    stop() {
      stopped = true;
      unsubscribe();
      child?.stdin?.end();
    },
  };
}
