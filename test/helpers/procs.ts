// /proc readings for the reliability tests and the soak: which processes carry a marker in
// their environment (it survives setsid and exec, unlike a command line), a process's RSS and
// open descriptors, and a forced GC for memory baselines.
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';

function readOr(file: string, fallback = ''): string {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch {
    return fallback;
  }
}

function pids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number);
}

function isZombie(pid: number): boolean {
  const stat = readOr(`/proc/${pid}/stat`);
  return stat === '' || stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
}

/** Live (non-zombie) pids whose environment holds exactly `entry` ("NAME=value"). */
export function processesWithEnv(entry: string): number[] {
  return pids().filter((pid) => {
    if (pid === process.pid) return false;
    const env = readOr(`/proc/${pid}/environ`);
    return env.split('\0').includes(entry) && !isZombie(pid);
  });
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
