// runScript with real processes (docs/scripts.md), in this process and through the launcher process: stdin protocol, exit/signal/timeout mapping, the
// stepped kill of the whole process group, stdout/stderr bounds, start failures, abort.
// Fixtures are small sh scripts in test/fixtures/runner/; every long-lived process carries
// a unique marker in its command line so the test can prove it is gone.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Command } from '../src/command.js';
import pino from 'pino';
import { startLauncher } from '../src/processes/link.js';
import type { RunLog, RunOptions, RunResult, RunScript } from '../src/processes/protocol.js';
import { runScript } from '../src/processes/runner.js';
import { FIXTURES, processesMatching, waitFor } from './helpers/harness.js';
import { leftovers } from './helpers/e2e.js';

const DIR = path.join(FIXTURES, 'runner');
// A clean clone may lose the executable bits; the runner execs the files directly.
for (const f of fs.readdirSync(DIR)) fs.chmodSync(path.join(DIR, f), 0o755);

const fixture = (name: string, ...args: string[]): Command => {
  const file = path.join(DIR, name);
  return { file, args, line: [file, ...args].join(' ') };
};

// A sleep duration that is also a unique marker: `sleep 20.<pid><n>` shows up in /proc.
let seq = 0;
const markers: string[] = [];
const marker = () => {
  const m = `20.${process.pid}${String(++seq).padStart(4, '0')}`;
  markers.push(m);
  return m;
};

const base = { input: '{}', timeoutMs: 3000, killAfterMs: 300, maxOutputBytes: 1 << 20 };

/** Waits briefly for the processes to go (signals are asynchronous) and returns what is left. */
/** The failure variant, or a thrown error (which fails the test) when the run succeeded. */
function fail(res: RunResult): Extract<RunResult, { ok: false }> {
  if (res.ok) throw new Error(`expected a failure, got ok with stdout ${JSON.stringify(res.stdout.slice(0, 100))}`);
  return res;
}

/** Polls /proc from spawn on: proves a later "gone" check is not vacuous. */
function watch(needle: string, onCount?: (count: number) => void) {
  const w = {
    max: 0,
    samples: [] as { ms: number; count: number }[],
    onSpawn: () => {
      const t0 = performance.now();
      const timer = setInterval(() => {
        const count = processesMatching(needle).length;
        w.samples.push({ ms: performance.now() - t0, count });
        w.max = Math.max(w.max, count);
        onCount?.(count);
        if (count === 0 && w.max > 0) clearInterval(timer);
      }, 10);
      w.stop = () => clearInterval(timer);
    },
    stop: () => {},
  };
  return w;
}

function fakeLog() {
  const calls: { level: 'debug' | 'warn'; obj: Record<string, unknown>; msg: string }[] = [];
  const log: RunLog = {
    debug: (obj, msg) => void calls.push({ level: 'debug', obj: obj as Record<string, unknown>, msg }),
    warn: (obj, msg) => void calls.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
  };
  return { log, calls };
}

// The same contract twice: runScript in this process, and through the launcher process that
// runs it for the aggregator (src/launcher.ts): the launcher must not change what a run means.
const launcher = startLauncher({ killMs: base.killAfterMs, log: pino({ level: 'silent' }) });
t.teardown(() => launcher.stop());
const IMPLEMENTATIONS: [string, RunScript][] = [
  ['runScript in this process', (o) => runScript(o)],
  ['through the launcher process', launcher.run],
];

for (const [name, impl] of IMPLEMENTATIONS) {
  t.test(name, async (t) => {
    const run = (opts: Partial<RunOptions> & { command: Command }) => impl({ ...base, ...opts });

    t.test('success: stdin is exactly one JSON line + "\\n", then EOF', async (t) => {
      const input = JSON.stringify({ code: '3310', brand: 'ctr', nested: { a: [1, 2] }, s: 'ü €' });
      const res = await run({ command: fixture('cat.sh'), input });
      t.ok(res.ok);
      // cat only exits at end of file, so a result at all proves stdin was closed.
      if (res.ok) {
        t.equal(res.stdout, `${input}\n`);
        t.ok(res.pid > 0);
      }
    });

    t.test('env carries AGGREGATOR_SESSION and AGGREGATOR_TASK_ID when passed', async (t) => {
      const res = await run({ command: fixture('env.sh'), env: { AGGREGATOR_SESSION: 's-7', AGGREGATOR_TASK_ID: '42' } });
      t.ok(res.ok);
      if (res.ok) t.same(JSON.parse(res.stdout), { session: 's-7', task: '42' });
    });

    t.test('onSpawn gets the pid, which leads its own process group', async (t) => {
      let spawned: number | undefined;
      let pgid: number | undefined;
      const res = await run({
        command: fixture('tree.sh', '0.2'),
        onSpawn: (pid) => {
          spawned = pid;
          // /proc/PID/stat field 5 is the process group id.
          const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
          pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
        },
      });
      t.ok(res.ok);
      t.equal(spawned, res.pid);
      t.equal(pgid, spawned, 'detached: the script is its group leader');
      t.not(pgid, process.pid);
    });

    t.test('a non-zero exit is E_SCRIPT_ERROR even with valid JSON on stdout', async (t) => {
      const res = fail(await run({ command: fixture('exit.sh', '3') }));
      t.equal(res.code, 'E_SCRIPT_ERROR');
      t.match(res.reason, /exit code 3/);
      t.equal(res.cancelled, false);
    });

    t.test('killed by a signal it sent itself is E_SCRIPT_ERROR', async (t) => {
      const res = fail(await run({ command: fixture('self-signal.sh') }));
      t.equal(res.code, 'E_SCRIPT_ERROR');
      t.match(res.reason, /SIGUSR1/);
      t.ok(res.durationMs < 4000, 'its `sleep 5` did not keep the task open');
    });

    t.test('timeout: E_SCRIPT_TIMEOUT, SIGTERM reaches the whole group (grandchild too)', async (t) => {
      const m = marker();
      const alive = watch(m);
      const res = fail(await run({ command: fixture('tree.sh', m), timeoutMs: 200, killAfterMs: 10_000, onSpawn: alive.onSpawn }));
      alive.stop();
      t.equal(alive.max, 3, 'sh, its child and its grandchild ran');
      t.equal(res.code, 'E_SCRIPT_TIMEOUT');
      t.ok(res.durationMs >= 190, `ran until the timeout (${Math.round(res.durationMs)} ms)`);
      t.ok(res.durationMs < 5000, `SIGTERM ended it, no wait for SIGKILL (${Math.round(res.durationMs)} ms)`);
      t.same(await leftovers(m, 5000), [], 'child and grandchild sleep are gone');
    });

    t.test('SIGTERM ignored: SIGKILL after killAfterMs ends the group', async (t) => {
      const m = marker();
      const alive = watch(m);
      const res = fail(await run({ command: fixture('ignore-term.sh', m), timeoutMs: 150, killAfterMs: 300, onSpawn: alive.onSpawn }));
      alive.stop();
      const afterTerm = alive.samples.filter((x) => x.ms >= 250 && x.ms <= 400);
      t.ok(afterTerm.length > 0 && afterTerm.every((x) => x.count === 3), 'between SIGTERM and SIGKILL all three lived on');
      t.equal(res.code, 'E_SCRIPT_TIMEOUT');
      t.ok(res.durationMs >= 150 + 300 - 15, `waited for the SIGKILL step (${Math.round(res.durationMs)} ms)`);
      t.ok(res.durationMs < 5000, `and no longer (${Math.round(res.durationMs)} ms)`);
      t.same(await leftovers(m, 5000), []);
    });

    t.test('a grandchild holding stdout after the parent exits does not hold the task', async (t) => {
      const m = marker();
      const res = await run({ command: fixture('orphan-stdout.sh', m) });
      t.ok(res.ok, 'exit code 0 is a success');
      if (res.ok) {
        t.same(JSON.parse(res.stdout), { items: [] });
        t.ok(res.durationMs < 5000, `ended promptly (${Math.round(res.durationMs)} ms, the grandchild sleeps 20 s)`);
      }
      t.same(await leftovers(m, 5000), [], 'the grandchild was killed');
    });

    t.test('stdout over maxOutputBytes: E_SCRIPT_ERROR and the process is killed', async (t) => {
      const m = marker();
      const res = fail(await run({ command: fixture('flood.sh', m), maxOutputBytes: 64 * 1024, timeoutMs: 10_000 }));
      t.equal(res.code, 'E_SCRIPT_ERROR');
      t.match(res.reason, /stdout over 65536 bytes/);
      t.ok(res.durationMs < 5000, 'killed at once, not at the timeout');
      t.same(await leftovers(m, 5000), []);
    });

    t.test('a missing program is E_SCRIPT_START', async (t) => {
      for (const file of ['/nonexistent/dir/items.php', 'no-such-program-aggregator-test']) {
        const res = fail(await run({ command: { file, args: [], line: file } }));
        t.equal(res.code, 'E_SCRIPT_START', file);
        t.match(res.reason, /ENOENT/);
        t.equal(res.cancelled, false);
      }
    });

    t.test('a file that is not executable is E_SCRIPT_START', async (t) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-runner-'));
      t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
      const file = path.join(dir, 'plain.sh');
      fs.writeFileSync(file, '#!/bin/sh\necho "{}"\n', { mode: 0o644 });
      const res = fail(await run({ command: { file, args: [], line: file } }));
      t.equal(res.code, 'E_SCRIPT_START');
      t.match(res.reason, /EACCES/);
    });

    t.test('invalid UTF-8 on stdout and stderr does not throw', async (t) => {
      const { log, calls } = fakeLog();
      const res = await run({ command: fixture('bad-utf8.sh'), log });
      t.ok(res.ok);
      if (res.ok) {
        t.ok(res.stdout.includes('\uFFFD'), 'bad bytes became replacement characters');
        t.throws(() => JSON.parse(res.stdout), 'the caller sees text that is not JSON, not an exception');
      }
      t.equal(calls.length, 1);
    });

    t.test('large stderr is bounded and logged once at debug with the pid', async (t) => {
      const { log, calls } = fakeLog();
      const res = await run({ command: fixture('stderr-flood.sh'), log, maxStderrBytes: 1000 });
      t.ok(res.ok, 'stderr does not make the script fail');
      t.equal(calls.length, 1);
      const call = calls[0]!;
      t.equal(call.level, 'debug');
      t.equal(call.obj.stderrBytes, 1048576, 'the full size is reported');
      t.equal((call.obj.stderr as string).length, 1000, 'only the bound is kept');
      t.match(call.obj.stderr, /^x+$/);
      t.equal(call.obj.pid, res.pid);

      // Without an explicit bound the default (64 KiB) applies.
      const dflt = fakeLog();
      await run({ command: fixture('stderr-flood.sh'), log: dflt.log });
      t.equal((dflt.calls[0]!.obj.stderr as string).length, 64 * 1024);

      // No stderr → no log line.
      const quiet = fakeLog();
      await run({ command: fixture('env.sh'), log: quiet.log });
      t.same(quiet.calls, []);
    });

    t.test('a script that never reads (or closes) stdin still works with a big input', async (t) => {
      const input = JSON.stringify({ blob: 'x'.repeat(5 * 1024 * 1024) });
      for (const mode of ['ignore', 'close']) {
        const res = await run({ command: fixture('no-stdin.sh', mode), input });
        t.ok(res.ok, mode);
        if (res.ok) t.same(JSON.parse(res.stdout), { items: [] });
      }
    });

    t.test('abort: cancelled is set and the whole group is killed', async (t) => {
      const m = marker();
      const ac = new AbortController();
      // Abort once the whole tree is up.
      const alive = watch(m, (count) => count === 3 && ac.abort());
      const res = fail(await run({ command: fixture('tree.sh', m), signal: ac.signal, timeoutMs: 10_000, onSpawn: alive.onSpawn }));
      alive.stop();
      t.equal(alive.max, 3, 'the group was alive before the abort');
      t.equal(res.cancelled, true);
      t.ok(res.durationMs < 5000);
      t.same(await leftovers(m, 5000), []);
    });

    t.test('abort while the process is being made: it is killed, not left to run', async (t) => {
      const m = marker();
      const ac = new AbortController();
      // Aborted in the same turn as the run was asked for: the process is still being started.
      const pending = run({ command: fixture('tree.sh', m), signal: ac.signal, timeoutMs: 10_000 });
      ac.abort();
      const res = fail(await pending);
      t.equal(res.cancelled, true);
      t.same(await leftovers(m, 5000), [], 'nothing of it runs on');
    });

    t.test('abort before start spawns nothing', async (t) => {
      let spawned = false;
      const res = fail(await run({ command: fixture('env.sh'), signal: AbortSignal.abort(), onSpawn: () => (spawned = true) }));
      t.equal(res.cancelled, true);
      t.equal(spawned, false);
    });
  });
}

t.test('no fixture process is left behind', async (t) => {
  t.same(await leftovers(DIR, 5000), [], 'no runner fixture script alive');
  for (const m of markers) t.same(await leftovers(m, 5000), [], `nothing with marker ${m}`);
});
