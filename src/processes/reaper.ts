// Which processes are ours, read from /proc and one environment tag, without any state file;
// and killing them. Every script carries AGGREGATOR_RUN=<owner>:<run>, which its descendants
// inherit whatever process group or session they move to:
// - owner, "<pid>.<start time>@<instance>": the aggregator that started it. pid + start time
//   name one process for the life of the machine even when pids are reused; the instance (the
//   absolute log folder, never shared by two instances) lets a start clean up after its own
//   dead predecessor without touching other instances.
// - run, "<launcher pid>.<n>": one script run. A run that starts with "-" is a placeholder,
//   never a run, and is never swept as a stray (the warm PHP parent carries one).
// Three sweeps read it: strays (what a finished run left outside its group, e.g. a setsid
// daemon) in the launcher, at most once a second; everything of one owner once the aggregator
// or its launcher is gone; and at start-up, what a dead predecessor of the same instance left.
// The live process groups are kept here too, so an exiting launcher kills whole groups.
// What this cannot catch (a process that clears its environment) is in docs/reliability.md.
import fs from 'node:fs';

export const TAG_ENV = 'AGGREGATOR_RUN';

export interface ProcStat {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  /** Clock ticks after boot (field 22 of /proc/PID/stat). */
  startTime: string;
}

/** /proc/PID/stat, or undefined when the process is gone. */
export function procStat(pid: number): ProcStat | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so cut at the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [state, ppid, pgrp] = rest;
  const startTime = rest[19];
  if (state === undefined || ppid === undefined || pgrp === undefined || startTime === undefined) return undefined;
  return { pid, ppid: Number(ppid), pgid: Number(pgrp), state, startTime };
}

/** One process seen in /proc; its files are read when asked for. */
export interface Proc {
  readonly pid: number;
  stat(): ProcStat | undefined;
  /** The value of `name` in the environment the process was started with. */
  env(name: string): string | undefined;
  /** The command line, arguments joined by spaces ('' when gone). */
  cmdline(): string;
}

// One buffer for every environ read: the stray sweep reads them all, up to once a second.
const envBuf = Buffer.alloc(256 * 1024);

function envValue(pid: number, name: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(`/proc/${pid}/environ`, 'r');
  } catch {
    return undefined; // gone, or another user's process
  }
  try {
    // Added entries are near the end (after the inherited environment): read it all.
    let len = 0;
    for (let n = 1; n > 0 && len < envBuf.length; len += n) n = fs.readSync(fd, envBuf, len, envBuf.length - len, null);
    const env = envBuf.subarray(0, len);
    const needle = `${name}=`;
    let at = env.indexOf(needle, 0, 'latin1');
    while (at > 0 && env[at - 1] !== 0) at = env.indexOf(needle, at + 1, 'latin1');
    if (at < 0) return undefined;
    const start = at + needle.length;
    const end = env.indexOf(0, start);
    return env.toString('latin1', start, end < 0 ? len : end);
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Every process but this one (zombies included: ask stat()). */
export function* processes(): Generator<Proc> {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return; // no /proc: nothing can be tracked (documented)
  }
  for (const entry of entries) {
    const c = entry.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    yield {
      pid,
      stat: () => procStat(pid),
      env: (name) => envValue(pid, name),
      cmdline: () => {
        try {
          return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trimEnd();
        } catch {
          return '';
        }
      },
    };
  }
}

const alive = (stat: ProcStat | undefined): stat is ProcStat => stat !== undefined && stat.state !== 'Z';

/** pids of the live (non-zombie) processes that `match` accepts. */
export function livePids(match: (p: Proc) => boolean): number[] {
  const out: number[] = [];
  for (const p of processes()) if (match(p) && alive(p.stat())) out.push(p.pid);
  return out;
}

// ---- Owners

/** A process's owner name, "<pid>.<start time>@<instance>". */
export function ownerTag(instance: string, pid = process.pid): string {
  return `${pid}.${procStat(pid)?.startTime ?? '0'}@${instance}`;
}

export function parseOwner(owner: string): { pid: number; startTime: string; instance: string } {
  const at = owner.indexOf('@');
  const [pid, startTime] = (at < 0 ? owner : owner.slice(0, at)).split('.');
  return { pid: Number(pid), startTime: startTime ?? '', instance: at < 0 ? '' : owner.slice(at + 1) };
}

/** Whether the owner still runs (a reused pid has another start time). */
export function ownerAlive(owner: string): boolean {
  const { pid, startTime } = parseOwner(owner);
  const stat = procStat(pid);
  return alive(stat) && stat.startTime === startTime;
}

/** "<owner>:<run>" → its parts (the instance may hold ':', the run never does). */
export function parseTag(value: string): { owner: string; run: string } | undefined {
  const at = value.lastIndexOf(':');
  return at < 0 ? undefined : { owner: value.slice(0, at), run: value.slice(at + 1) };
}

export interface TaggedProcess extends ProcStat {
  owner: string;
  run: string;
}

/** Live processes whose tag `match` accepts. */
export function findTagged(match: (owner: string, run: string) => boolean): TaggedProcess[] {
  const out: TaggedProcess[] = [];
  for (const p of processes()) {
    const value = p.env(TAG_ENV);
    const tag = value === undefined ? undefined : parseTag(value);
    if (!tag || !match(tag.owner, tag.run)) continue;
    const stat = p.stat();
    if (alive(stat)) out.push({ ...stat, ...tag });
  }
  return out;
}

/** SIGKILLs the processes, and the groups of those that lead one; returns how many were hit. */
export function killTagged(procs: readonly TaggedProcess[]): number {
  let n = 0;
  for (const p of procs) {
    try {
      process.kill(p.pgid === p.pid ? -p.pgid : p.pid, 'SIGKILL');
      n++;
    } catch {
      // already gone
    }
  }
  return n;
}

/** Kills everything `owner` started (its aggregator or launcher is gone); returns the pids. */
export function killOwner(owner: string): number[] {
  const procs = findTagged((o) => o === owner);
  killTagged(procs);
  return procs.map((p) => p.pid);
}

/** Kills what earlier runs of `instance` that no longer run left behind (after a SIGKILL). */
export function reapOrphans(instance: string): TaggedProcess[] {
  const orphans = findTagged((owner) => parseOwner(owner).instance === instance && !ownerAlive(owner));
  killTagged(orphans);
  return orphans;
}

// ---- Runs (in the process that starts the scripts)

let tagOwner = ownerTag('');
const runPrefix = `${process.pid}.`;
const liveRuns = new Set<string>();
let runSeq = 0;
const SWEEP_EVERY_MS = 1000;
let lastSweep = 0;
let sweepTimer: NodeJS.Timeout | undefined;

/** The owner every tag of this process names (the launcher sets the aggregator's). */
export function setTagOwner(owner: string): void {
  tagOwner = owner;
}

export function tagOwnerOf(): string {
  return tagOwner;
}

export interface RunTag {
  /** Environment entries to add to the script's environment. */
  readonly env: Readonly<Record<string, string>>;
  /** The script has exited: anything still carrying the tag is a stray, swept soon. */
  retire(): void;
}

export function tagRun(): RunTag {
  const run = `${runPrefix}${++runSeq}`;
  liveRuns.add(run);
  let retired = false;
  return {
    env: { [TAG_ENV]: `${tagOwner}:${run}` },
    retire() {
      if (retired) return;
      retired = true;
      liveRuns.delete(run);
      scheduleSweep();
    },
  };
}

function scheduleSweep(): void {
  if (sweepTimer) return;
  // Not unref'd: a pending sweep finishes before the process exits on its own.
  sweepTimer = setTimeout(
    () => {
      sweepTimer = undefined;
      sweepStrays();
    },
    Math.max(100, lastSweep + SWEEP_EVERY_MS - Date.now()),
  );
}

/** SIGKILLs every process of this owner's runs from here whose run is over; returns their pids. */
export function sweepStrays(): number[] {
  lastSweep = Date.now();
  const strays = findTagged((owner, run) => owner === tagOwner && run.startsWith(runPrefix) && !liveRuns.has(run));
  const killed: number[] = [];
  for (const p of strays) {
    try {
      process.kill(p.pid, 'SIGKILL');
      killed.push(p.pid);
    } catch {
      // already gone
    }
  }
  return killed;
}

// ---- Process groups: every script leads its own (setsid); an exiting launcher kills them all.

const liveGroups = new Set<number>();

export function trackGroup(pgid: number): void {
  liveGroups.add(pgid);
}

export function untrackGroup(pgid: number): void {
  liveGroups.delete(pgid);
}

/** Signals the whole group; false when it no longer exists. */
export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

export function killAllGroups(signal: NodeJS.Signals): number {
  let n = 0;
  for (const pgid of liveGroups) if (killGroup(pgid, signal)) n++;
  return n;
}

let exitHookInstalled = false;

/** On any exit of this process, SIGKILL what is left: scripts must not outlive us. */
export function installExitKill(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => killAllGroups('SIGKILL'));
}
