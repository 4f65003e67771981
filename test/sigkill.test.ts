// SIGKILL cannot be handled, and the next start must not be disturbed by what it left
// (docs/service.md, What happens to running scripts).
// A real `node dist/main.js` with hanging PHP scripts is SIGKILLed: its launcher process (which
// started them) kills the scripts within timeout.kill; and when the launcher is SIGKILLed too, the
// next start kills them.
// Either way the next start on the same port and log folder works.
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { LOG_FILE } from '../src/logger.js';
import { demoRequest, invariantViolations, processesMatching, search, waitFor } from './helpers/harness.js';
import { leftovers } from './helpers/e2e.js';
import { type RealServer, startReal } from './helpers/real-process.js';

const KILL_S = 0.5;

/** The hanging items scripts (the suppliers scripts end by themselves). */
const itemScripts = (tag: string) =>
  processesMatching(tag).filter((pid) => {
    try {
      // A warm child's command line area ends in padding NULs (warm.ts): one is the end.
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '\0').split('\0');
      return argv[0] === '/usr/bin/php' && argv.at(-2) === 'script/items.php';
    } catch {
      return false;
    }
  });

/** A real server whose scripts hang (itemsTimeout × 2 = 6 PHP processes), with its launcher's pid. */
async function hungServer(t: Test, overrides: Record<string, string | number> = {}) {
  const srv = await startReal({ 'aggregator.timeout.script': 60, 'aggregator.timeout.kill': KILL_S, ...overrides });
  t.teardown(() => {
    srv.kill();
    for (const pid of processesMatching(srv.tag)) process.kill(pid, 'SIGKILL');
    fs.rmSync(srv.logDir, { recursive: true, force: true });
  });
  const searches = [1, 2].map(() => search(srv.wsBase, demoRequest('itemsTimeout'), { timeoutMs: 20000 }).catch(() => undefined));
  t.ok(await waitFor(() => itemScripts(srv.tag).length === 6, 5000), 'six PHP items scripts hang');
  const launchers = processesMatching(srv.logDir).filter((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('launcher.js'));
  t.equal(launchers.length, 1, 'one launcher process runs');
  return { srv, searches, launcher: launchers[0] ?? -1 };
}

async function nextStartWorks(t: Test, old: RealServer) {
  const next = await startReal({ 'server.port': old.port }, { logDir: old.logDir, tag: old.tag });
  t.teardown(() => next.kill());
  t.equal(next.port, old.port, 'the next start listens on the same port');
  t.equal((await fetch(`${next.httpBase}/health`)).status, 200);
  const res = await search(next.wsBase, demoRequest('normal'));
  t.same(invariantViolations(res.frames), []);
  t.equal(res.frames.at(-1)?._status, 'SUCCESS', 'and searches');
  next.child.kill('SIGTERM');
  t.equal((await next.exited).code, 0);
  t.same(await leftovers(old.tag, 5000), []);
}

t.test('SIGKILL of the aggregator: its launcher kills the scripts at once; the next start works', async (t) => {
  const { srv, searches, launcher } = await hungServer(t);
  const killedAt = performance.now();
  process.kill(srv.pid, 'SIGKILL');
  await srv.exited;
  const gone = await waitFor(() => processesMatching(srv.tag).length === 0, 3000, 10);
  const took = performance.now() - killedAt;
  t.ok(gone, 'no PHP script runs on');
  t.ok(took < KILL_S * 1000 + 1000, `gone ${Math.round(took)} ms after the SIGKILL`);
  t.ok(await waitFor(() => processesMatching(srv.logDir).length === 0, 2000), 'the launcher exits when done');
  const closes = await Promise.all(searches);
  t.ok(closes.every((r) => r && r.closeCode === 1006), 'the browsers saw the connection drop (1006)');

  const launcherLine = fs
    .readFileSync(path.join(srv.logDir, LOG_FILE), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.component === 'launcher');
  t.ok(launcherLine, "the launcher's line is in aggregator.log");
  t.equal(launcherLine?.pid, launcher);
  t.equal((launcherLine?.groups as unknown[] | undefined)?.length, 6, 'it killed the six process groups it had started');

  await nextStartWorks(t, srv);
});

t.test('SIGKILL of the aggregator and its launcher: the next start kills the orphans', async (t) => {
  // spawn: a warm PHP parent would kill its scripts itself when its launcher dies (warm.test.ts
  // shows that); here nobody is left but the next start.
  const { srv, searches, launcher } = await hungServer(t, { 'aggregator.script.runner': 'spawn' });
  // Stopped first, so it cannot kill the scripts itself when it sees the launcher die.
  process.kill(srv.pid, 'SIGSTOP');
  process.kill(launcher, 'SIGKILL');
  process.kill(srv.pid, 'SIGKILL');
  await srv.exited;
  await Promise.all(searches);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(itemScripts(srv.tag).length, 6, 'with nobody left to kill them, the scripts run on');

  const next = await startReal({ 'server.port': srv.port }, { logDir: srv.logDir, tag: srv.tag });
  t.teardown(() => next.kill());
  // (the new aggregator's own command line carries the tag too)
  t.ok(await waitFor(() => processesMatching(srv.tag).every((pid) => pid === next.pid), 1000), 'the next start killed them');
  const reapedLine = () =>
    fs
      .readFileSync(path.join(srv.logDir, LOG_FILE), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'killed scripts left by a dead aggregator');
  t.ok(await waitFor(() => reapedLine() !== undefined, 2000), 'and said so in the log');
  const reaped = reapedLine();
  t.ok(((reaped?.pids as unknown[] | undefined)?.length ?? 0) >= 6, 'naming the pids');
  t.equal((await fetch(`${next.httpBase}/health`)).status, 200);
  next.child.kill('SIGTERM');
  t.equal((await next.exited).code, 0);
});
