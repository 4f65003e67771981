// The script launcher: a small separate node process (dist/src/processes/launcher.js) that
// starts every script for the aggregator and watches over them. Why a process of its own:
// Node's spawn() forks synchronously, and from the ~100 MB aggregator each fork stalled its
// event loop for 5-8 ms under load (docs/performance.md), holding up handshakes and frames of
// every session; from this small process a fork is cheaper, and the aggregator never waits.
// It also outlives a SIGKILLed aggregator just long enough to kill its scripts: the IPC channel
// closes however the aggregator dies (exit, crash, SIGKILL, OOM kill), and then every run is
// stopped the runner's usual way (SIGTERM to the group, SIGKILL after timeout.kill), whatever
// still carries the aggregator's owner tag is SIGKILLed, and the launcher exits.
//
// Usage (link.ts starts it with an IPC channel): node launcher.js KILL_MS OWNER [LOG_FILE [RUNNER]]
// RUNNER is aggregator.script.runner: `warm` runs the PHP commands that qualify from warm PHP
// parents (warm.ts), everything else with spawn.
// It ignores SIGTERM/SIGINT/SIGHUP: a Ctrl-C or a signal to the aggregator's group must not
// take it down before the aggregator has ended its searches. It runs in its own process group.
import fs from 'node:fs';
import type { LauncherReply, LauncherRequest, RunRequest } from './protocol.js';
import { installExitKill, killAllGroups, killOwner, setTagOwner } from './reaper.js';
import { runScript } from './runner.js';
import { spawnStarter } from './spawn.js';
import type { ScriptStarter } from './starter.js';
import { WarmStarter } from './warm.js';

const killMs = Number(process.argv[2] ?? 1000);
const owner = process.argv[3] ?? '';
const logFile = process.argv[4] ?? '';
const warm: WarmStarter | undefined =
  process.argv[5] === 'warm'
    ? new WarmStarter({
        fallback: spawnStarter,
        log: report,
        // The server counts them for /metrics.
        onRestart: (restarts) => reply({ t: 'warm', restarts }),
      })
    : undefined;
const starter: ScriptStarter = warm ?? spawnStarter;

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => {});
installExitKill();
// Every script carries the aggregator's tag: after a crash the next start finds what is left.
if (owner) setTagOwner(owner);

interface Run {
  abort: AbortController;
  pid?: number;
  done: Promise<unknown>;
}
const runs = new Map<number, Run>();
// Read once: copying process.env (a getter per variable) was 15% of the launcher's CPU per run.
const baseEnv = { ...process.env };

function reply(msg: LauncherReply, sent?: () => void): void {
  if (process.connected) process.send?.(msg, undefined, undefined, sent);
}

// stdout chunks not yet written to the channel, per run: past this many the script's stdout is
// paused, so a server slower to read than the script writes makes the script wait, not us
// buffer its whole answer (3 answers of 8 MB at once made this process 40 MB bigger).
const MAX_CHUNKS_IN_FLIGHT = 8;

// What passes through here is almost all Buffers (outside V8's heap), which a scavenge frees only
// when the young heap fills, and that barely happens here: relayed answers piled up as garbage
// (three 8 MB answers at once: +31 MB). A minor GC per 2 MB relayed (about 0.1 ms; the launcher
// runs with --expose-gc) keeps that to a few MB.
const COLLECT_EVERY_BYTES = 2 * 1024 * 1024;
const minorGc = (globalThis as { gc?: (o: { type: 'minor' }) => void }).gc;
let relayed = 0;
function collectRelayed(bytes: number): void {
  relayed += bytes;
  if (relayed < COLLECT_EVERY_BYTES || !minorGc) return;
  relayed = 0;
  minorGc({ type: 'minor' });
}

function start(req: RunRequest): void {
  const { id } = req;
  const abort = new AbortController();
  const run: Run = { abort, done: Promise.resolve() };
  runs.set(id, run);
  const { t: _t, id: _id, ...spec } = req;
  let inFlight = 0;
  run.done = runScript(
    {
      ...spec,
      signal: abort.signal,
      onSpawn: (pid) => {
        run.pid = pid;
        reply({ t: 'started', id, pid });
      },
      // Bytes go on as they come: the launcher holds no script's answer.
      onStdout: (chunk, flow) => {
        if (++inFlight === MAX_CHUNKS_IN_FLIGHT) flow.pause();
        collectRelayed(chunk.length);
        reply({ t: 'out', id, chunk }, () => {
          if (inFlight-- === MAX_CHUNKS_IN_FLIGHT) flow.resume();
        });
      },
      log: {
        debug: (obj, msg) => reply({ t: 'log', id, level: 'debug', obj, msg }),
        warn: (obj, msg) => reply({ t: 'log', id, level: 'warn', obj, msg }),
      },
    },
    { baseEnv, starter },
  )
    .catch((err: unknown) => ({ ok: false as const, code: 'E_SCRIPT_START' as const, reason: String(err), cancelled: false, durationMs: 0 }))
    .then((result) => {
      runs.delete(id);
      reply({ t: 'done', id, result });
    });
}

process.on('message', (msg: LauncherRequest) => {
  if (msg.t === 'run') start(msg);
  else if (msg.t === 'cancel') runs.get(msg.id)?.abort.abort();
});

/** One pino-shaped line to stderr (the journal) and to the aggregator's log file. */
function report(msg: string, extra: Record<string, unknown>): void {
  const line = `${JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, component: 'launcher', owner, ...extra, msg })}\n`;
  process.stderr.write(line);
  if (logFile) {
    try {
      fs.appendFileSync(logFile, line); // the aggregator is gone: nobody else writes the file now
    } catch {
      // no log folder: stderr has it
    }
  }
}

// The aggregator is gone (or has stopped us): stop every run, sweep, exit.
process.on('disconnect', () => {
  const left = [...runs.values()];
  const groups = left.flatMap((r) => (r.pid === undefined ? [] : [r.pid]));
  for (const r of left) r.abort.abort();
  let finishing = false;
  const finish = async () => {
    if (finishing) return;
    finishing = true;
    // Warm parents end their own children and exit; what is left after that is a stray.
    await starter.close();
    killAllGroups('SIGKILL');
    const killed = owner ? killOwner(owner) : [];
    if (groups.length > 0 || killed.length > 0) report('aggregator gone: killed its scripts', { groups, strays: killed });
    process.exit(0);
  };
  // Each aborted run settles once its group is dead (SIGKILL after timeout.kill at the latest);
  // the timer is the backstop should one not.
  const backstop = setTimeout(() => void finish(), 2 * killMs + 1000);
  void Promise.allSettled(left.map((r) => r.done)).then(() => {
    clearTimeout(backstop);
    void finish();
  });
});

// Started without a channel (by hand): nothing to do.
if (!process.connected) process.exit(2);
reply({ t: 'ready' });
