// src/strays.ts on real processes: a process that left its script's group is killed once its
// run is over, never while the run lives, and never when it belongs to another aggregator.
import { type ChildProcess, spawn } from 'node:child_process';
import t, { type Test } from 'tap';
import { RUN_ENV, sweepStrays, tagRun } from '../src/strays.js';
import { waitFor } from './helpers/harness.js';

/** A detached `sleep` (its own session, as `setsid` would make it) carrying `env`. */
function daemon(t: Test, env: Record<string, string>): ChildProcess {
  const child = spawn('sleep', ['30'], { env: { ...process.env, ...env }, detached: true, stdio: 'ignore' });
  t.teardown(() => {
    try {
      process.kill(child.pid ?? -1, 'SIGKILL');
    } catch {
      // gone
    }
  });
  return child;
}
const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;

t.test('the tag names this process and the run', async (t) => {
  const a = tagRun();
  const b = tagRun();
  t.match(a.env[RUN_ENV], new RegExp(`^${process.pid}\\.\\d+:\\d+$`));
  t.not(a.env[RUN_ENV], b.env[RUN_ENV], 'each run its own');
  a.retire();
  b.retire();
});

t.test('a stray of a live run is spared; once the run is retired it is killed', async (t) => {
  const run = tagRun();
  const stray = daemon(t, run.env);
  await new Promise((r) => setTimeout(r, 100));
  t.notOk(sweepStrays().includes(stray.pid ?? -1), 'not while its run lives');
  t.ok(alive(stray));
  run.retire();
  t.ok(sweepStrays().includes(stray.pid ?? -1), 'killed by the next sweep');
  t.ok(await waitFor(() => !alive(stray), 2000));
  t.equal(stray.signalCode, 'SIGKILL');
});

t.test('retire() schedules the sweep by itself', async (t) => {
  const run = tagRun();
  const stray = daemon(t, run.env);
  await new Promise((r) => setTimeout(r, 100));
  run.retire();
  t.ok(await waitFor(() => !alive(stray), 3000), 'gone within the sweep interval');
});

t.test("another aggregator's processes are never touched", async (t) => {
  const foreign = daemon(t, { [RUN_ENV]: '1.123:1' }); // pid 1, another start time: not us
  const run = tagRun();
  run.retire();
  await new Promise((r) => setTimeout(r, 100));
  t.notOk(sweepStrays().includes(foreign.pid ?? -1));
  t.ok(alive(foreign));
});
