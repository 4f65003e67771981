// src/orphans.ts on real processes: owner tags, liveness across pid reuse, and the start-up
// sweep that kills only what a dead run of the same instance left.
import { type ChildProcess, spawn } from 'node:child_process';
import t, { type Test } from 'tap';
import { OWNER_ENV, findOwned, ownerAlive, ownerTag, parseTag, procInfo, reapOrphans } from '../src/orphans.js';
import { waitFor } from './helpers/harness.js';

const instance = `/tmp/orphans-test-${process.pid}-${Date.now()}`;

function sleeper(t: Test, owner: string): ChildProcess {
  const child = spawn('sleep', ['30'], { env: { ...process.env, [OWNER_ENV]: owner }, detached: true, stdio: 'ignore' });
  t.teardown(() => {
    try {
      process.kill(-(child.pid ?? 0), 'SIGKILL');
    } catch {
      // already dead
    }
  });
  return child;
}

const alive = (pid: number | undefined) => {
  const info = procInfo(pid ?? -1);
  return info !== undefined && info.state !== 'Z';
};

t.test('tags name one process: pid, start time and instance', async (t) => {
  const tag = ownerTag(instance);
  t.match(tag, new RegExp(`^${process.pid}\\.\\d+@${instance}$`));
  t.same(parseTag(tag), { pid: process.pid, startTime: procInfo(process.pid)?.startTime, instance });
  t.ok(ownerAlive(tag), 'this process is alive');
  t.notOk(ownerAlive(`${process.pid}.1@${instance}`), 'same pid, other start time: a reused pid is not the owner');
  t.notOk(ownerAlive(`999999999.1@${instance}`), 'no such process');
});

t.test('reapOrphans kills only processes of a dead owner of the same instance', async (t) => {
  const deadOwner = `999999998.12345@${instance}`;
  const orphan = sleeper(t, deadOwner);
  const otherInstance = sleeper(t, `999999998.12345@${instance}-other`);
  const liveOwner = sleeper(t, ownerTag(instance));
  t.ok(await waitFor(() => findOwned((o) => o.startsWith('999999998.')).length === 2), 'found by their environment');
  const found = findOwned((o) => o === deadOwner);
  t.same(found.map((p) => p.pid), [orphan.pid]);
  t.equal(found[0]?.pgid, orphan.pid, 'a detached child leads its own group');

  const reaped = reapOrphans(instance);
  t.same(reaped.map((p) => p.pid), [orphan.pid], 'the orphan, nothing else');
  t.ok(await waitFor(() => !alive(orphan.pid), 2000), 'the orphan is dead');
  t.ok(alive(otherInstance.pid), "another instance's orphan is left to that instance");
  t.ok(alive(liveOwner.pid), 'a process of a live owner is left alone');
});
