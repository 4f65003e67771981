// src/processes/reaper.ts on real processes: the one /proc scanner, the tag every script
// carries, and its three sweeps: strays of finished runs (never while the run lives, never a
// placeholder, never another owner's), everything of one owner, and the orphans a dead
// predecessor of the same instance left.
import { type ChildProcess, spawn } from 'node:child_process';
import t, { type Test } from 'tap';
import {
  TAG_ENV,
  findTagged,
  killOwner,
  livePids,
  ownerAlive,
  ownerTag,
  parseOwner,
  parseTag,
  procStat,
  processes,
  reapOrphans,
  sweepStrays,
  tagOwnerOf,
  tagRun,
} from '../src/processes/reaper.js';
import { waitFor } from './helpers/harness.js';

const instance = `/tmp/reaper-test-${process.pid}-${Date.now()}`;

/** A detached `sleep` (its own session and group, as `setsid` would make it) carrying `env`. */
function daemon(t: Test, env: Record<string, string>): ChildProcess {
  const child = spawn('sleep', ['30'], { env: { ...process.env, ...env }, detached: true, stdio: 'ignore' });
  t.teardown(() => {
    try {
      process.kill(-(child.pid ?? 0), 'SIGKILL');
    } catch {
      // gone
    }
  });
  return child;
}
const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
/** The child's environment is readable in /proc once it has exec'd sleep. */
const started = (c: ChildProcess, name: string) => waitFor(() => [...processes()].some((p) => p.pid === c.pid && p.env(name) !== undefined), 2000);

t.test('the scanner reads stat, environment and command line of other processes', async (t) => {
  const child = daemon(t, { REAPER_TEST_MARK: 'x=y' });
  t.ok(await started(child, 'REAPER_TEST_MARK'));
  const seen = [...processes()].find((p) => p.pid === child.pid);
  t.ok(seen, 'the child is listed');
  t.equal(seen?.env('REAPER_TEST_MARK'), 'x=y', 'a value may hold "="');
  t.equal(seen?.env('NO_SUCH_VARIABLE_HERE'), undefined);
  t.equal(seen?.cmdline(), 'sleep 30');
  t.match(seen?.stat(), { pid: child.pid, ppid: process.pid, pgid: child.pid, state: /^[RS]$/ });
  t.notOk([...processes()].some((p) => p.pid === process.pid), 'never this process');
  t.same(livePids((p) => p.env('REAPER_TEST_MARK') === 'x=y'), [child.pid]);
});

t.test('owners name one process: pid, start time and instance', async (t) => {
  const owner = ownerTag(instance);
  t.match(owner, new RegExp(`^${process.pid}\\.\\d+@${instance}$`));
  t.same(parseOwner(owner), { pid: process.pid, startTime: procStat(process.pid)?.startTime, instance });
  t.ok(ownerAlive(owner), 'this process is alive');
  t.notOk(ownerAlive(`${process.pid}.1@${instance}`), 'same pid, other start time: a reused pid is not the owner');
  t.notOk(ownerAlive(`999999999.1@${instance}`), 'no such process');
  t.same(parseTag(`1.2@/var/log/a:b:${process.pid}.7`), { owner: '1.2@/var/log/a:b', run: `${process.pid}.7` }, 'an instance may hold ":"');
});

t.test('run tags: this owner, one run each', async (t) => {
  const a = tagRun();
  const b = tagRun();
  const ta = parseTag(a.env[TAG_ENV] ?? '');
  t.equal(ta?.owner, tagOwnerOf());
  t.match(ta?.run, new RegExp(`^${process.pid}\\.\\d+$`));
  t.not(a.env[TAG_ENV], b.env[TAG_ENV], 'each run its own');
  a.retire();
  b.retire();
});

t.test('a stray of a live run is spared; once the run is retired it is killed', async (t) => {
  const run = tagRun();
  const stray = daemon(t, run.env);
  t.ok(await started(stray, TAG_ENV));
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
  t.ok(await started(stray, TAG_ENV));
  run.retire();
  t.ok(await waitFor(() => !alive(stray), 3000), 'gone within the sweep interval');
});

t.test('placeholders and other owners are never swept as strays', async (t) => {
  const placeholder = daemon(t, { [TAG_ENV]: `${tagOwnerOf()}:-warm-parent-placeholder` });
  const foreign = daemon(t, { [TAG_ENV]: `1.123@/elsewhere:${process.pid}.1` }); // pid 1, another start time: not us
  t.ok(await started(placeholder, TAG_ENV));
  t.ok(await started(foreign, TAG_ENV));
  const run = tagRun();
  run.retire();
  const killed = sweepStrays();
  t.notOk(killed.includes(placeholder.pid ?? -1), 'a placeholder run is never a stray');
  t.notOk(killed.includes(foreign.pid ?? -1), "another owner's process is left alone");
  t.ok(alive(placeholder) && alive(foreign));
});

t.test('killOwner kills everything of one owner, placeholders included, nothing else', async (t) => {
  const owner = `999999997.4242@${instance}`;
  const script = daemon(t, { [TAG_ENV]: `${owner}:77.1` });
  const parent = daemon(t, { [TAG_ENV]: `${owner}:-warm-parent` });
  const other = daemon(t, { [TAG_ENV]: `999999997.4242@${instance}-other:77.1` });
  for (const c of [script, parent, other]) t.ok(await started(c, TAG_ENV));
  t.same(killOwner(owner).sort(), [script.pid, parent.pid].sort());
  t.ok(await waitFor(() => !alive(script) && !alive(parent), 2000), 'both are dead');
  t.ok(alive(other), 'a look-alike owner is not the owner');
});

t.test('reapOrphans kills only processes of a dead owner of the same instance', async (t) => {
  const deadOwner = `999999998.12345@${instance}`;
  const orphan = daemon(t, { [TAG_ENV]: `${deadOwner}:5.1` });
  const otherInstance = daemon(t, { [TAG_ENV]: `999999998.12345@${instance}-other:5.1` });
  const liveOwner = daemon(t, { [TAG_ENV]: `${ownerTag(instance)}:5.2` });
  t.ok(await waitFor(() => findTagged((o) => o.startsWith('999999998.')).length === 2), 'found by their environment');
  const found = findTagged((o) => o === deadOwner);
  t.same(found.map((p) => p.pid), [orphan.pid]);
  t.equal(found[0]?.pgid, orphan.pid, 'a detached child leads its own group');

  const reaped = reapOrphans(instance);
  t.same(reaped.map((p) => p.pid), [orphan.pid], 'the orphan, nothing else');
  t.ok(await waitFor(() => !alive(orphan), 2000), 'the orphan is dead');
  t.ok(alive(otherInstance), "another instance's orphan is left to that instance");
  t.ok(alive(liveOwner), 'a process of a live owner is left alone');
});
