// Graceful shutdown (docs/service.md, Stopping), as an admin does it: `node dist/main.js`, searches
// with running PHP scripts, a real SIGTERM or SIGINT. Every open search gets SESSION ERROR
// E_SERVER_SHUTDOWN and close 1001 (each task ending exactly once), /health stops saying ok, no PHP
// process remains, exit code 0 within timeout.kill + 2 s, and the log file is flushed to its last
// line.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { LOG_FILE } from '../src/logger.js';
import { findTagged } from '../src/processes/reaper.js';
import {
  type SearchResult,
  demoRequest,
  invariantViolations,
  processesMatching,
  search,
  startServer,
  waitFor,
} from './helpers/harness.js';
import { ROOT } from './helpers/harness.js';
import { startReal, statsOf } from './helpers/real-process.js';

/** Every process (scripts, their children) carrying this server's owner tag in its environment. */
const ownedBy = (logDir: string) => findTagged((owner) => owner.endsWith(`@${logDir}`));

const KILL_S = 0.5;

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} with running scripts: E_SERVER_SHUTDOWN, 1001, no PHP left, exit 0 in time, log flushed`, async (t) => {
    const srv = await startReal({
      'aggregator.timeout.script': 60,
      'aggregator.timeout.session': 60,
      'aggregator.timeout.kill': KILL_S,
      'aggregator.pool.executor': 6,
      'logging.level.me.blzr.aggregator': 'DEBUG',
    });
    t.teardown(() => {
      srv.kill();
      fs.rmSync(srv.logDir, { recursive: true, force: true });
    });
    // itemsTimeout: 3 hanging scripts; sessionTimeout: 2001 suppliers, the pool's rest runs, the others queue.
    const searches: Promise<SearchResult>[] = ['itemsTimeout', 'sessionTimeout', 'itemsTimeout'].map((code) =>
      search(srv.wsBase, demoRequest(code), { timeoutMs: 15000 }),
    );
    const busy = await waitFor(async () => (await statsOf(srv.httpBase))?.taskRunning === 6, 8000);
    t.ok(busy, 'the pool is full of running scripts');
    t.ok(await waitFor(() => processesMatching(srv.tag).length >= 6, 3000), "PHP scripts run");
    t.equal((await fetch(`${srv.httpBase}/health`)).status, 200);

    const healthSeen: (number | string)[] = [];
    let polling = true;
    const poll = (async () => {
      while (polling) {
        healthSeen.push(await fetch(`${srv.httpBase}/health`).then((r) => r.status, () => 'refused'));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    // The first SESSION frame marks the shutdown as started; after it /health must never be 200.
    const signalledAt = performance.now();
    srv.child.kill(signal);
    const results = await Promise.all(searches);
    const healthAfter = healthSeen.length;
    const exit = await srv.exited;
    await new Promise((r) => setTimeout(r, 50));
    polling = false;
    await poll;

    t.equal(exit.code, 0, 'exit code 0');
    const took = exit.at - signalledAt;
    t.ok(took < (KILL_S + 2) * 1000, `exited ${Math.round(took)} ms after ${signal} (limit ${(KILL_S + 2) * 1000})`);
    for (const res of results) {
      t.same(invariantViolations(res.frames), [], 'every task ended exactly once, SESSION frame last');
      t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'ERROR', _error: 'E_SERVER_SHUTDOWN' });
      t.equal(res.closeCode, 1001);
      t.equal(res.closeReason, 'E_SERVER_SHUTDOWN');
    }
    const taskEnds = results.flatMap((r) => r.frames).filter((f) => f._task !== 'SESSION' && f._status === 'ERROR');
    t.ok(taskEnds.some((f) => f._error === 'E_SERVER_SHUTDOWN'), 'running tasks end with E_SERVER_SHUTDOWN');
    t.ok(taskEnds.some((f) => f._error === 'E_SCRIPT_CANCELLED'), 'queued tasks end with E_SCRIPT_CANCELLED');
    t.notOk(healthSeen.slice(healthAfter).includes(200), `/health never 200 once searches were shut (${healthSeen.slice(healthAfter).join(',')})`);

    t.ok(await waitFor(() => processesMatching(srv.tag).length === 0, 1000), 'no PHP script remains');
    t.same(ownedBy(srv.logDir), [], 'no process it started remains');
    t.ok(await waitFor(() => processesMatching(srv.logDir).length === 0, 1000), 'the launcher exited too');
    const log = fs.readFileSync(path.join(srv.logDir, LOG_FILE), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    t.ok(log.some((l) => l.msg === 'shutting down' && l.signal === signal), 'the signal is logged');
    t.equal(log.at(-1)?.msg, 'stopped', "the log file ends with the 'stopped' line (flushed)");
    t.notOk(log.some((l) => l.component === 'launcher'), 'the launcher had nothing left to kill');
  });
}

t.test('SIGTERM with scripts that ignore SIGTERM: SIGKILL after timeout.kill, still in time', async (t) => {
  const srv = await startReal({
    'aggregator.script.items': `/bin/sh ${ROOT}/test/fixtures/items-stubborn.sh`,
    'aggregator.timeout.script': 60,
    'aggregator.timeout.kill': KILL_S,
  });
  t.teardown(() => {
    srv.kill();
    for (const p of ownedBy(srv.logDir)) process.kill(p.pid, 'SIGKILL');
    fs.rmSync(srv.logDir, { recursive: true, force: true });
  });
  const searching = search(srv.wsBase, demoRequest('normal'), { timeoutMs: 15000 });
  // 3 stubborn shells, each with a `sleep` child: 6 processes carrying the owner tag.
  t.ok(await waitFor(() => ownedBy(srv.logDir).length >= 6, 5000), 'three stubborn scripts and their children run');
  const signalledAt = performance.now();
  srv.child.kill('SIGTERM');
  const res = await searching;
  const exit = await srv.exited;
  t.equal(exit.code, 0);
  const took = exit.at - signalledAt;
  t.ok(took >= KILL_S * 1000 && took < (KILL_S + 2) * 1000, `exited ${Math.round(took)} ms after SIGTERM: after timeout.kill, within + 2 s`);
  t.same(invariantViolations(res.frames), []);
  t.match(res.frames.at(-1), { _error: 'E_SERVER_SHUTDOWN' });
  t.ok(await waitFor(() => ownedBy(srv.logDir).length === 0, 1000), 'the SIGKILL reached them and their children');
  const last = fs.readFileSync(path.join(srv.logDir, LOG_FILE), 'utf8').trim().split('\n').at(-1) ?? '{}';
  t.equal((JSON.parse(last) as { msg?: string }).msg, 'stopped', 'log flushed');
});

t.test('/health answers 503 while the shutdown runs', async (t) => {
  const srv = await startServer();
  t.teardown(() => fs.rmSync(srv.logDir, { recursive: true, force: true }));
  t.equal((await srv.agg.app.inject({ url: '/health' })).statusCode, 200);
  const done = srv.close();
  const during = await srv.agg.app.inject({ url: '/health' });
  t.equal(during.statusCode, 503);
  t.same(during.json(), { status: 'shutting down' }, "the aggregator's own answer");
  await done;
});
