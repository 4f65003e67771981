// Which processes an aggregator started, found from /proc without any state file: every
// script inherits AGGREGATOR_OWNER=<pid>.<start time>@<instance> of the aggregator that
// started it (main.ts sets it). pid + start time name one process for the life of the machine
// even when pids are reused; the instance (the absolute log folder, which two instances never
// share) lets a start clean up after its own predecessor without touching other instances.
// The guardian uses this after the aggregator died; the next start of the same instance uses
// it when even the guardian was killed.
import fs from 'node:fs';

export const OWNER_ENV = 'AGGREGATOR_OWNER';

export interface ProcInfo {
  pid: number;
  pgid: number;
  state: string;
  /** Clock ticks after boot (field 22 of /proc/PID/stat). */
  startTime: string;
}

/** /proc/PID/stat, or undefined when the process is gone. */
export function procInfo(pid: number): ProcInfo | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so cut at the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [state, , pgrp] = rest;
  const startTime = rest[19];
  if (state === undefined || pgrp === undefined || startTime === undefined) return undefined;
  return { pid, pgid: Number(pgrp), state, startTime };
}

/** This process's tag, "<pid>.<start time>@<instance>". */
export function ownerTag(instance: string, pid = process.pid): string {
  return `${pid}.${procInfo(pid)?.startTime ?? '0'}@${instance}`;
}

export function parseTag(tag: string): { pid: number; startTime: string; instance: string } {
  const at = tag.indexOf('@');
  const [pid, startTime] = (at < 0 ? tag : tag.slice(0, at)).split('.');
  return { pid: Number(pid), startTime: startTime ?? '', instance: at < 0 ? '' : tag.slice(at + 1) };
}

/** Whether the process the tag names still runs (a reused pid has another start time). */
export function ownerAlive(tag: string): boolean {
  const { pid, startTime } = parseTag(tag);
  const info = procInfo(pid);
  return info !== undefined && info.state !== 'Z' && info.startTime === startTime;
}

export interface OwnedProcess extends ProcInfo {
  owner: string;
}

/** Live (non-zombie) processes carrying an owner tag that `match` accepts. */
export function findOwned(match: (owner: string) => boolean): OwnedProcess[] {
  const out: OwnedProcess[] = [];
  const prefix = `${OWNER_ENV}=`;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let environ: string;
    try {
      environ = fs.readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue; // gone, or another user's process
    }
    // Index in "\0" + environ of "\0NAME=" = index of "NAME=" in environ.
    const at = `\0${environ}`.indexOf(`\0${prefix}`);
    if (at < 0) continue;
    const end = environ.indexOf('\0', at);
    const owner = environ.slice(at + prefix.length, end === -1 ? undefined : end);
    if (!match(owner)) continue;
    const info = procInfo(pid);
    if (info && info.state !== 'Z') out.push({ ...info, owner });
  }
  return out;
}

/** SIGKILLs the processes and the groups they lead; returns how many processes were hit. */
export function killOwned(procs: OwnedProcess[]): number {
  let n = 0;
  for (const p of procs) {
    try {
      if (p.pgid === p.pid) process.kill(-p.pgid, 'SIGKILL');
      else process.kill(p.pid, 'SIGKILL');
      n++;
    } catch {
      // already gone
    }
  }
  return n;
}

/** Kills what earlier runs of `instance` that no longer run left behind (after a SIGKILL). */
export function reapOrphans(instance: string): OwnedProcess[] {
  const orphans = findOwned((owner) => parseTag(owner).instance === instance && !ownerAlive(owner));
  killOwned(orphans);
  return orphans;
}
