// Every script runs as the leader of its own process group. This registry knows the live
// groups so an exiting launcher (src/launcher.ts) can kill whole groups, grandchildren
// included (Node kills nothing of a detached child's group on its own).

const live = new Set<number>();

export function trackGroup(pgid: number): void {
  live.add(pgid);
}

export function untrackGroup(pgid: number): void {
  live.delete(pgid);
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
  for (const pgid of live) if (killGroup(pgid, signal)) n++;
  return n;
}

let exitHookInstalled = false;

/** On any exit of this process, SIGKILL what is left: scripts must not outlive us. */
export function installExitKill(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => killAllGroups('SIGKILL'));
}
