// /proc readings for the reliability tests and the soak (through the reaper's one scanner):
// which processes carry a marker in their environment (it survives setsid and exec, unlike a
// command line), a process's RSS and open descriptors, and a forced GC for memory baselines.
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { livePids } from '../../src/processes/reaper.js';

function readOr(file: string, fallback = ''): string {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch {
    return fallback;
  }
}

/** Live (non-zombie) pids whose environment holds exactly `entry` ("NAME=value"). */
export function processesWithEnv(entry: string): number[] {
  const at = entry.indexOf('=');
  const name = entry.slice(0, at);
  const value = entry.slice(at + 1);
  return livePids((p) => p.env(name) === value);
}

/** SIGKILLs the given pids (test cleanup only: pids found by a unique marker). */
export function killAll(list: number[]): void {
  for (const pid of list) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Resident set size of `pid` in bytes (VmRSS), 0 when it is gone. */
export function rssBytes(pid = process.pid): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readOr(`/proc/${pid}/status`));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Number of open file descriptors of `pid`. */
export function fdCount(pid = process.pid): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

let gcFn: (() => void) | undefined;

/** A full GC, without --expose-gc on the command line (the flag can be set at run time). */
export function forceGc(): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
}

/** Heap in use after a full GC, in bytes. */
export function heapAfterGc(): number {
  forceGc();
  return process.memoryUsage().heapUsed;
}
