// Strays: processes a script left outside its process group (`setsid`, a double-forked daemon,
// `setpgid`), which the group kill cannot reach. Every run gets AGGREGATOR_RUN=<owner>:<run> in
// its environment, which every descendant inherits whatever group or session it moves to; once
// the run's script has exited, one /proc scan (at most one a second) SIGKILLs whatever still
// carries that run's tag. What this cannot catch is listed in docs/reliability.md.
import fs from 'node:fs';
import { procInfo } from './orphans.js';

export const RUN_ENV = 'AGGREGATOR_RUN';

// "<pid>.<start time>": names this process for the machine's uptime, even across pid reuse.
const OWNER = `${process.pid}.${procInfo(process.pid)?.startTime ?? '0'}`;
const SWEEP_EVERY_MS = 1000;
const live = new Set<string>();
let seq = 0;
let lastSweep = 0;
let timer: NodeJS.Timeout | undefined;

export interface RunTag {
  /** Environment entries to add to the script's environment. */
  readonly env: Readonly<Record<string, string>>;
  /** The script has exited: anything still carrying the tag is a stray, swept soon. */
  retire(): void;
}

export function tagRun(): RunTag {
  const id = String(++seq);
  live.add(id);
  let retired = false;
  return {
    env: { [RUN_ENV]: `${OWNER}:${id}` },
    retire() {
      if (retired) return;
      retired = true;
      live.delete(id);
      scheduleSweep();
    },
  };
}

function scheduleSweep(): void {
  if (timer) return;
  // Not unref'd: a pending sweep finishes before the process exits on its own.
  timer = setTimeout(
    () => {
      timer = undefined;
      sweepStrays();
    },
    Math.max(100, lastSweep + SWEEP_EVERY_MS - Date.now()),
  );
}

const NEEDLE = Buffer.from(`${RUN_ENV}=${OWNER}:`);
const buf = Buffer.alloc(256 * 1024);

/** The run id of this owner in /proc/PID/environ, or undefined. */
function runOf(pid: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(`/proc/${pid}/environ`, 'r');
  } catch {
    return undefined; // gone, or another user's process
  }
  try {
    // Our entry is near the end (added after the inherited environment): read it all.
    let len = 0;
    for (let n = 1; n > 0 && len < buf.length; len += n) n = fs.readSync(fd, buf, len, buf.length - len, null);
    const env = buf.subarray(0, len);
    let at = env.indexOf(NEEDLE);
    while (at > 0 && env[at - 1] !== 0) at = env.indexOf(NEEDLE, at + 1);
    if (at < 0) return undefined;
    const start = at + NEEDLE.length;
    const end = env.indexOf(0, start);
    return env.toString('latin1', start, end < 0 ? len : end);
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** SIGKILLs every process of this owner whose run is over; returns their pids. */
export function sweepStrays(): number[] {
  lastSweep = Date.now();
  const killed: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return killed; // no /proc: nothing can be tracked (documented)
  }
  for (const pid of entries) {
    const c = pid.charCodeAt(0);
    if (c < 48 || c > 57 || Number(pid) === process.pid) continue;
    const run = runOf(pid);
    if (run === undefined || live.has(run)) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
      killed.push(Number(pid));
    } catch {
      // already gone
    }
  }
  return killed;
}

/** Runs not yet retired (for tests and /debug). */
export function liveRuns(): number {
  return live.size;
}
