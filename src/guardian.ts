// The guardian: a tiny separate process (dist/src/guardian.js, plain node) that outlives a
// SIGKILLed aggregator just long enough to kill its scripts. The aggregator holds the write
// end of our stdin and sends "+PGID" / "-PGID" lines as script process groups start and end.
// EOF on stdin means the aggregator is gone (exit, crash, SIGKILL, OOM kill: the kernel closes
// the pipe in every case), so we SIGTERM the groups still registered, SIGKILL them after
// KILL_MS, then SIGKILL anything else still carrying the aggregator's owner tag (a grandchild
// that left its group), and exit. Under systemd, KillMode=control-group does the same job.
//
// Usage: node guardian.js KILL_MS OWNER_TAG [LOG_FILE]
// It ignores SIGTERM/SIGINT/SIGHUP: a Ctrl-C or a signal to the aggregator's group must not
// take it down before the aggregator is gone. It runs in its own process group (detached).
import fs from 'node:fs';
import { findOwned, killOwned } from './orphans.js';

const killMs = Number(process.argv[2] ?? 1000);
const owner = process.argv[3] ?? '';
const logFile = process.argv[4];

const groups = new Set<number>();
let pending = '';

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => {});

function signalGroups(signal: NodeJS.Signals): number {
  let n = 0;
  for (const pgid of groups) {
    try {
      process.kill(-pgid, signal);
      n++;
    } catch {
      groups.delete(pgid); // the group is gone
    }
  }
  return n;
}

/** One pino-shaped line to stderr (the journal) and to the aggregator's log file. */
function report(msg: string, extra: Record<string, unknown>): void {
  const line = `${JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, component: 'guardian', owner, ...extra, msg })}\n`;
  process.stderr.write(line);
  if (logFile) {
    try {
      fs.appendFileSync(logFile, line); // the aggregator is dead: nobody else writes the file now
    } catch {
      // no log folder: stderr has it
    }
  }
}

let gone = false;
function onAggregatorGone(): void {
  if (gone) return;
  gone = true;
  const registered = [...groups];
  const termed = signalGroups('SIGTERM');
  const finish = () => {
    signalGroups('SIGKILL');
    const strays = owner ? findOwned((o) => o === owner) : [];
    killOwned(strays);
    if (registered.length > 0 || strays.length > 0) {
      report('aggregator gone: killed its scripts', { groups: registered, strays: strays.map((p) => p.pid) });
    }
    process.exit(0);
  };
  if (termed > 0) setTimeout(finish, killMs);
  else finish();
}

process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  pending += chunk;
  const lines = pending.split('\n');
  pending = lines.pop() ?? '';
  for (const line of lines) {
    const pgid = Number(line.slice(1));
    if (!Number.isInteger(pgid) || pgid <= 1) continue;
    if (line[0] === '+') groups.add(pgid);
    else if (line[0] === '-') groups.delete(pgid);
  }
});
process.stdin.on('end', onAggregatorGone);
process.stdin.on('error', onAggregatorGone);
