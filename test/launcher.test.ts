// src/launcher-link.ts + src/launcher.ts with real processes: what only the launcher adds to a
// run (test/runner.test.ts runs the runner's whole contract through it too): the owner tag, its
// death mid-run, stop() with runs out, signals it must survive, and a launcher that keeps dying.
import fs from 'node:fs';
import pino from 'pino';
import t, { type Test } from 'tap';
import type { Command } from '../src/command.js';
import { type Launcher, startLauncher } from '../src/processes/link.js';
import type { RunOptions, RunResult } from '../src/processes/protocol.js';
import { TAG_ENV, ownerTag, parseTag } from '../src/processes/reaper.js';
import { processesMatching, waitFor } from './helpers/harness.js';
import { leftovers } from './helpers/e2e.js';

const silent = pino({ level: 'silent' });
const owner = ownerTag(`/tmp/launcher-test-${process.pid}`);
const sh = (script: string): Command => ({ file: '/bin/sh', args: ['-c', script], line: script });
const base = { input: '{}', timeoutMs: 10_000, killAfterMs: 300, maxOutputBytes: 1 << 20 };

let seq = 0;
/** A sleep duration that is also a unique marker in /proc. */
const marker = () => `30.${process.pid}${String(++seq).padStart(4, '0')}`;

function launcherFor(t: Test, extra: { owner?: string } = {}): Launcher {
  const l = startLauncher({ killMs: base.killAfterMs, log: silent, ...extra });
  t.teardown(() => l.stop());
  return l;
}

function run(l: Launcher, opts: Partial<RunOptions> & { command: Command }): Promise<RunResult> {
  return l.run({ ...base, ...opts });
}

/** The `sleep` processes carrying the marker (the `sh -c` that started them carries it too). */
const sleeping = (m: string) =>
  processesMatching(m).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep';
    } catch {
      return false;
    }
  });

const alive = (pid: number | undefined) => pid !== undefined && fs.existsSync(`/proc/${pid}`) && !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));

t.test("scripts carry the aggregator's tag, one run each; the launcher itself does not", async (t) => {
  process.env[TAG_ENV] = 'inherited-by-mistake';
  t.teardown(() => delete process.env[TAG_ENV]);
  const l = launcherFor(t, { owner });
  const tags: string[] = [];
  for (let i = 0; i < 2; i++) {
    const res = await run(l, { command: sh(`printf '%s' "$${TAG_ENV}"`) });
    t.ok(res.ok);
    if (res.ok) tags.push(res.stdout);
  }
  const parsed = tags.map(parseTag);
  t.same(parsed.map((p) => p?.owner), [owner, owner], 'the owner is the aggregator');
  t.match(parsed[0]?.run, new RegExp(`^${l.pid}\\.\\d+$`), 'the run is named by the launcher');
  t.not(parsed[0]?.run, parsed[1]?.run, 'each run its own');
  const environ = fs.readFileSync(`/proc/${l.pid}/environ`, 'latin1');
  t.notOk(environ.includes(`${TAG_ENV}=`), 'an orphan sweep must never take the launcher for a script');
});

t.test('the launcher dies mid-run: the run fails, its processes are killed, the next run works', async (t) => {
  const l = launcherFor(t, { owner });
  const m = marker();
  const d = marker();
  let spawned: number | undefined;
  // A group member and a daemon that left the group: only the owner sweep reaches the second.
  const pending = run(l, { command: sh(`setsid sleep ${d} </dev/null >/dev/null 2>&1 & sleep ${m}`), onSpawn: (pid) => (spawned = pid) });
  t.ok(await waitFor(() => sleeping(m).length === 1 && sleeping(d).length === 1, 3000), 'script and daemon run');
  const first = l.pid;
  process.kill(first ?? -1, 'SIGKILL');
  const res = await pending;
  t.match(res, { ok: false, code: 'E_SCRIPT_ERROR', reason: 'script launcher died', cancelled: false, pid: spawned });
  t.ok(await waitFor(() => sleeping(m).length === 0 && sleeping(d).length === 0, 2000), 'both are gone');
  t.equal(l.running, 0);
  const next = await run(l, { command: sh('echo ok') });
  t.match(next, { ok: true, stdout: 'ok\n' });
  t.not(l.pid, first, 'a new launcher');
});

t.test('stop() with a run out: the launcher kills it, the run settles, the launcher exits', async (t) => {
  const l = startLauncher({ killMs: base.killAfterMs, log: silent });
  const m = marker();
  const pending = run(l, { command: sh(`sleep ${m}`) });
  t.ok(await waitFor(() => sleeping(m).length === 1, 3000));
  const pid = l.pid;
  l.stop();
  const res = await pending;
  t.equal(res.ok, false);
  t.ok(await waitFor(() => sleeping(m).length === 0, 2000), 'the script is gone');
  t.ok(await waitFor(() => !alive(pid), 2000), 'the launcher exited');
  t.match(await run(l, { command: sh('echo late') }), { ok: false, code: 'E_SCRIPT_START' }, 'a stopped launcher starts nothing');
});

t.test('SIGINT, SIGTERM and SIGHUP do not stop the launcher (a Ctrl-C reaches the whole terminal group)', async (t) => {
  const l = launcherFor(t);
  await run(l, { command: sh('true') });
  const pid = l.pid;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.kill(pid ?? -1, sig);
  await new Promise((r) => setTimeout(r, 200));
  t.ok(alive(pid), 'still running');
  t.match(await run(l, { command: sh('echo still') }), { ok: true, stdout: 'still\n' });
  t.equal(l.pid, pid, 'the same launcher');
});

t.test('a wedged launcher (stopped) is killed once a run is overdue; its runs end, the next one works', async (t) => {
  const l = startLauncher({ killMs: 100, log: silent, answerGraceMs: 300 });
  t.teardown(() => l.stop());
  await run(l, { command: sh('true') });
  const wedged = l.pid;
  const m = marker();
  const pending = run(l, { command: sh(`sleep ${m}`), timeoutMs: 200, killAfterMs: 100 });
  t.ok(await waitFor(() => sleeping(m).length === 1, 3000));
  process.kill(wedged ?? -1, 'SIGSTOP');
  const t0 = performance.now();
  const res = await pending;
  t.match(res, { ok: false, code: 'E_SCRIPT_ERROR', reason: 'script launcher died' });
  t.ok(performance.now() - t0 < 3000, 'ended after the run limits + grace, not never');
  t.ok(await waitFor(() => sleeping(m).length === 0, 2000), 'its script is gone');
  t.notOk(alive(wedged), 'the wedged launcher is gone');
  t.match(await run(l, { command: sh('echo next') }), { ok: true, stdout: 'next\n' });
});

t.test('a launcher that keeps dying is not restarted without end', async (t) => {
  const l = launcherFor(t);
  const results: RunResult[] = [];
  for (let i = 0; i < 5; i++) {
    const m = marker();
    const pending = run(l, { command: sh(`sleep ${m}`) });
    t.ok(await waitFor(() => sleeping(m).length === 1, 3000), `run ${i + 1} started`);
    process.kill(l.pid ?? -1, 'SIGKILL');
    results.push(await pending);
  }
  t.ok(results.every((r) => !r.ok && r.reason === 'script launcher died'));
  const res = await run(l, { command: sh('echo no') });
  t.match(res, { ok: false, code: 'E_SCRIPT_START', reason: 'script launcher unavailable' }, 'five deaths in a minute: runs fail to start');
  t.equal(l.pid, undefined);
});

t.test('no test process is left behind', async (t) => {
  t.same(await leftovers(`30.${process.pid}`, 5000), []);
});
