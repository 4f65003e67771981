// A search's life beyond the happy path, end to end with real php (docs/protocol.md,
// docs/errors.md, docs/scripts.md): reuse of the socket, the browser leaving, session and queue
// timeouts, shutdown, every aggregator.limit.*, scripts that cannot start or fail, the shared
// pool's size and fairness across sessions, and the WebSocket Origin check.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import WebSocket from 'ws';
import {
  type AnyFrame,
  type TestServer,
  FIXTURES,
  demoRequest,
  invariantViolations,
  processesMatching,
  search,
  startServer,
  waitFor,
} from './helpers/harness.js';
import {
  demoScript,
  finalFrames,
  fixtureRequest,
  fixtureScript,
  getStats,
  killLeftovers,
  leftovers,
  marker,
  sleep,
  taskViews,
  upgradeStatus,
} from './helpers/e2e.js';

const MARK = marker('lifecycle');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-lifecycle-'));
const servers: TestServer[] = [];

t.teardown(async () => {
  await Promise.all(servers.map((s) => s.close()));
  killLeftovers(MARK);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A server running the fixture scripts (or the demo ones with `demo`). */
async function server(overrides: Record<string, string | number> = {}, demo = false): Promise<TestServer> {
  const srv = await startServer({
    'aggregator.script.suppliers': demo ? demoScript('suppliers', MARK) : fixtureScript('suppliers-from-code.php', MARK),
    'aggregator.script.items': demo ? demoScript('items', MARK) : fixtureScript('items-do.php', MARK),
    'aggregator.timeout.script': 2,
    ...overrides,
  });
  servers.push(srv);
  return srv;
}

let logSeq = 0;
/** A fresh start log for items-do.php: each script appends "start <task id> <name>". */
function startLog(): { file: string; starts: () => string[] } {
  const file = path.join(tmp, `starts-${++logSeq}.log`);
  return {
    file,
    starts: () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')[2] ?? '') : []),
  };
}

const brief = (frames: AnyFrame[]) =>
  frames.map((f) => [f._task === 'SESSION' ? 'SESSION' : String((f._info as { name?: string } | undefined)?.name ?? f._task), f._status, f._error ?? '']);

t.test('a second frame while searching: one E_SESSION_REUSED each, the search goes on', async (t) => {
  const srv = await server({}, true);
  let sent = false;
  const res = await search(srv.wsBase, demoRequest('normal'), {
    timeoutMs: 8000,
    onFrame: (_f, ws) => {
      if (sent) return;
      sent = true;
      ws.send(JSON.stringify(demoRequest('analog')));
      ws.send('not even JSON');
    },
  });
  t.same(invariantViolations(res.frames), []);
  const reused = res.frames.filter((f) => f._error === 'E_SESSION_REUSED');
  t.equal(reused.length, 2, 'one E_SESSION_REUSED frame per extra frame');
  for (const f of reused) {
    t.match(f, { _task: 'SESSION', _status: 'ERROR', _session: res.frames[0]?._session });
    t.notOk('_id' in f, 'no _id');
  }
  t.equal(taskViews(res.frames).filter((v) => v.kind === 'SUPPLIERS').length, 1, 'no second search started');
  t.equal(res.frames.filter((f) => f._status === 'SENDING').length, 9, 'the first search sent all its items');
  t.ok(res.frames.filter((f) => f._status === 'SENDING').every((f) => String(f.supplier).startsWith('normal')));
  t.match(finalFrames(res.frames), [{ _task: 'SESSION', _status: 'SUCCESS' }]);
  t.equal(res.closeCode, 1000);
});

t.test('the browser closes mid-search: running scripts killed at once, queued ones never start', async (t) => {
  const srv = await server({ 'aggregator.pool.executor': 2, 'aggregator.timeout.script': 20 });
  const log = startLog();
  const suppliers = ['a', 'b', 'c', 'd'].map((name) => ({ name, log: log.file, sleep: 20, grandchild: MARK }));
  let closedAt = 0;
  const res = await search(srv.wsBase, fixtureRequest(suppliers), {
    timeoutMs: 8000,
    onFrame: (f, ws) => {
      if (f._task !== 'SUPPLIERS' || f._status !== 'SUCCESS') return;
      // Both pool slots busy: 2 scripts (each with a grandchild) running, 2 tasks queued.
      void waitFor(() => log.starts().length === 2 && processesMatching(MARK).length >= 4, 5000).then(() => {
        closedAt = performance.now();
        ws.close();
      });
    },
  });
  t.ok(closedAt > 0, 'closed while two scripts ran');
  const gone = await waitFor(() => processesMatching(MARK).length === 0, 2000, 10);
  t.ok(gone, 'every script and grandchild of the session is gone');
  t.ok(performance.now() - closedAt < 1500, `killed at once (${Math.round(performance.now() - closedAt)} ms after the close)`);
  await sleep(400);
  t.same(log.starts().sort(), ['a', 'b'], 'the queued tasks never started (the two running ones start in either order)');
  t.same(invariantViolations(res.frames.filter((f) => f._task !== 'SESSION')), [], 'the frames received before the close are consistent');
  t.notOk(res.frames.some((f) => f._task === 'SESSION'), 'no SESSION frame after the browser left');
  t.ok(await waitFor(() => srv.agg.stats.sessionAlive === 0, 2000), 'the session ended');
  t.match(srv.agg.stats.toJSON(), { taskTotal: 5, taskPending: 0, taskRunning: 0, taskSucceeded: 1, taskFailed: 4, poolBusy: 0 });
});

t.test('session timeout: queued → E_SCRIPT_CANCELLED, running → E_SESSION_TIMEOUT, SESSION, close 4408', async (t) => {
  const srv = await server({ 'aggregator.pool.executor': 1, 'aggregator.timeout.session': 1.5, 'aggregator.timeout.script': 20 });
  const suppliers = ['a', 'b', 'c'].map((name) => ({ name, info: { name }, sleep: 20, grandchild: MARK }));
  const request = fixtureRequest(suppliers);
  const res = await search(srv.wsBase, request, { timeoutMs: 8000 });
  t.same(invariantViolations(res.frames), []);
  t.same(
    brief(res.frames),
    [
      ['SUPPLIERS', 'PENDING', ''],
      ['a', 'PENDING', ''],
      ['b', 'PENDING', ''],
      ['c', 'PENDING', ''],
      ['SUPPLIERS', 'SUCCESS', ''],
      ['b', 'ERROR', 'E_SCRIPT_CANCELLED'],
      ['c', 'ERROR', 'E_SCRIPT_CANCELLED'],
      ['a', 'ERROR', 'E_SESSION_TIMEOUT'],
      ['SESSION', 'ERROR', 'E_SESSION_TIMEOUT'],
    ],
    'the exact frames, in order',
  );
  const params = { code: request.code, brand: 'ctr', analog: 0 };
  t.ok(res.frames.filter((f) => f._status === 'ERROR').every((f) => JSON.stringify(f._params) === JSON.stringify(params)), '_params on every ERROR');
  t.equal(res.closeCode, 4408);
  t.equal(res.closeReason, 'E_SESSION_TIMEOUT');
  t.ok(res.ms > 1450 && res.ms < 6000, `after about 1.5 s (${Math.round(res.ms)} ms)`);
  t.same(await leftovers(MARK, 1500), [], 'the running script and its grandchild were killed');
});

t.test('session timeout during the suppliers step: SUPPLIERS and SESSION E_SESSION_TIMEOUT, close 4408', async (t) => {
  const srv = await server({ 'aggregator.timeout.session': 1, 'aggregator.timeout.script': 20 }, true);
  const res = await search(srv.wsBase, demoRequest('suppliersTimeout'), { timeoutMs: 8000 });
  t.same(invariantViolations(res.frames), []);
  t.same(brief(res.frames), [
    ['SUPPLIERS', 'PENDING', ''],
    ['SUPPLIERS', 'ERROR', 'E_SESSION_TIMEOUT'],
    ['SESSION', 'ERROR', 'E_SESSION_TIMEOUT'],
  ]);
  t.same(res.frames[1]?._params, { code: 'suppliersTimeout', brand: 'ctr', analog: 1 });
  t.equal(res.closeCode, 4408);
  t.equal(res.closeReason, 'E_SESSION_TIMEOUT');
  t.same(await leftovers(MARK, 1500), [], 'the suppliers script was killed');
});

t.test('aggregator.timeout.queue: tasks still queued after it are cancelled', async (t) => {
  const srv = await server({ 'aggregator.pool.executor': 1, 'aggregator.timeout.queue': 0.3 });
  const log = startLog();
  const suppliers = ['a', 'b', 'c'].map((name) => ({ name, info: { name }, log: log.file, sleep: 0.8, items: [{ n: name }] }));
  const res = await search(srv.wsBase, fixtureRequest(suppliers), { timeoutMs: 8000 });
  t.same(invariantViolations(res.frames), []);
  t.same(
    brief(res.frames),
    [
      ['SUPPLIERS', 'PENDING', ''],
      ['a', 'PENDING', ''],
      ['b', 'PENDING', ''],
      ['c', 'PENDING', ''],
      ['SUPPLIERS', 'SUCCESS', ''],
      ['b', 'ERROR', 'E_SCRIPT_CANCELLED'],
      ['c', 'ERROR', 'E_SCRIPT_CANCELLED'],
      ['a', 'SENDING', ''],
      ['a', 'SUCCESS', ''],
      ['SESSION', 'SUCCESS', ''],
    ],
    'b and c cancelled while a runs; the search still succeeds',
  );
  t.same(log.starts(), ['a'], 'the cancelled tasks never started');
  t.equal(res.closeCode, 1000);
});

t.test('server shutdown: E_SERVER_SHUTDOWN frames, close 1001, scripts killed', async (t) => {
  const srv = await startServer({
    'aggregator.script.suppliers': fixtureScript('suppliers-from-code.php', MARK),
    'aggregator.script.items': fixtureScript('items-do.php', MARK),
    'aggregator.pool.executor': 1,
    'aggregator.timeout.script': 20,
  });
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= srv.close());
  t.teardown(close);
  const suppliers = ['a', 'b'].map((name) => ({ name, info: { name }, sleep: 20, grandchild: MARK }));
  const res = await search(srv.wsBase, fixtureRequest(suppliers), {
    timeoutMs: 8000,
    onFrame: (f) => {
      if (f._task === 'SUPPLIERS' && f._status === 'SUCCESS')
        void waitFor(() => processesMatching(MARK).length >= 2, 5000).then(close);
    },
  });
  t.same(invariantViolations(res.frames), []);
  t.same(brief(res.frames).slice(-3), [
    ['b', 'ERROR', 'E_SCRIPT_CANCELLED'],
    ['a', 'ERROR', 'E_SERVER_SHUTDOWN'],
    ['SESSION', 'ERROR', 'E_SERVER_SHUTDOWN'],
  ]);
  t.equal(res.closeCode, 1001);
  t.same(await leftovers(MARK, 1500), [], 'scripts killed');
});

t.test('aggregator.limit.sessions: close 1013 E_TOO_MANY_SESSIONS', async (t) => {
  const srv = await server({ 'aggregator.limit.sessions': 2 }, true);
  const open = () =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`${srv.wsBase}/ws`);
      ws.on('open', () => resolve(ws));
      ws.on('error', reject);
    });
  const idle = [await open(), await open()];
  t.teardown(() => idle.forEach((ws) => ws.terminate()));
  t.ok(await waitFor(() => srv.agg.sessions.size === 2), 'two sessions open');
  const over = await search(srv.wsBase, demoRequest('normal'), { timeoutMs: 5000 });
  t.equal(over.closeCode, 1013);
  t.equal(over.closeReason, 'E_TOO_MANY_SESSIONS');
  t.same(over.frames, [], 'no frame, no search');
  idle[0]!.close();
  t.ok(await waitFor(() => srv.agg.sessions.size === 1), 'one session left');
  const again = await search(srv.wsBase, demoRequest('normal'), { timeoutMs: 5000 });
  t.match(again.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' }, 'below the limit again: served');
  t.equal(again.closeCode, 1000);
});

t.test('aggregator.limit.tasks: tasks past the limit get E_SCRIPT_CANCELLED at once', async (t) => {
  const srv = await server({ 'aggregator.limit.tasks': 4 }, true);
  const [analog, loop] = await Promise.all([
    search(srv.wsBase, demoRequest('analog'), { timeoutMs: 8000 }),
    search(srv.wsBase, demoRequest('analogLoop'), { timeoutMs: 8000 }),
  ]);
  for (const res of [analog, loop]) {
    t.same(invariantViolations(res.frames), []);
    t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' }, 'the search itself succeeds');
    t.equal(res.closeCode, 1000);
    const views = taskViews(res.frames);
    const cancelled = views.filter((v) => v.error === 'E_SCRIPT_CANCELLED');
    t.equal(views.length - cancelled.length, 4, 'exactly 4 tasks ran (the suppliers task counts)');
    t.ok(cancelled.length >= 1, 'the rest were cancelled');
    for (const v of cancelled) {
      t.equal(v.last, v.first + 1, `task ${v.id}: ERROR right after its PENDING`);
      t.ok(v.parent !== undefined, 'a nested task');
      t.same(v.frames[1]?._params, { code: res === analog ? 'analog' : 'analogLoop', brand: 'ctr', analog: 1 });
    }
  }
  t.equal(taskViews(analog.frames).filter((v) => v.error === 'E_SCRIPT_CANCELLED').length, 2, 'analog: both children of analog-3');
  t.same(
    taskViews(loop.frames).map((v) => `${v.kind} ${v.status} ${v.items.length}`),
    ['SUPPLIERS SUCCESS 0', 'ITEMS SUCCESS 1', 'ITEMS SUCCESS 1', 'ITEMS SUCCESS 1', 'ITEMS ERROR 0'],
    'analogLoop: stopped by the limit',
  );
});

t.test('aggregator.limit.request-size: a larger frame is closed with 1009', async (t) => {
  const srv = await server({ 'aggregator.limit.request-size': 300 }, true);
  const small = demoRequest('emptySuppliers', { pad: 'x'.repeat(100) });
  const big = demoRequest('emptySuppliers', { pad: 'x'.repeat(400) });
  const [ok, over] = await Promise.all([search(srv.wsBase, small, { timeoutMs: 5000 }), search(srv.wsBase, big, { timeoutMs: 5000 })]);
  t.match(ok.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' }, 'a frame under the limit is served');
  t.equal(ok.closeCode, 1000);
  t.equal(over.closeCode, 1009, 'over the limit: 1009');
  t.same(over.frames, [], 'and no search');
});

t.test('script failures: output over the limit, non-zero exit with JSON, a signal, cannot start', async (t) => {
  const srv = await server({ 'aggregator.limit.output-size': '1KB' });
  const res = await search(
    srv.wsBase,
    fixtureRequest([
      { name: 'fits', info: { name: 'fits' }, bytes: 900 },
      { name: 'big', info: { name: 'big' }, bytes: 1100 },
      { name: 'exit3', info: { name: 'exit3' }, exit: 3, items: [{ n: 1 }] },
      { name: 'killed', info: { name: 'killed' }, signal: 'KILL', items: [{ n: 1 }] },
      { name: 'notjson', info: { name: 'notjson' }, stdout: '{"items": [' },
    ]),
    { timeoutMs: 8000 },
  );
  t.same(invariantViolations(res.frames), []);
  const end = (name: string) => brief(res.frames).find(([n, s]) => n === name && (s === 'SUCCESS' || s === 'ERROR'));
  t.same(end('fits'), ['fits', 'SUCCESS', ''], '900 bytes of a 1 KB limit pass');
  t.same(end('big'), ['big', 'ERROR', 'E_SCRIPT_ERROR'], 'stdout over aggregator.limit.output-size');
  t.same(end('exit3'), ['exit3', 'ERROR', 'E_SCRIPT_ERROR'], 'a non-zero exit even with valid JSON stdout');
  t.same(end('killed'), ['killed', 'ERROR', 'E_SCRIPT_ERROR'], 'killed by a signal we did not send');
  t.same(end('notjson'), ['notjson', 'ERROR', 'E_ITEMS_JSON']);
  t.equal(res.frames.filter((f) => f._status === 'SENDING').length, 1, 'only the passing script sent items');
  t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' });

  const missing = await server({ 'aggregator.script.suppliers': `/nonexistent/${MARK}/suppliers` });
  const noStart = await search(missing.wsBase, demoRequest('normal'), { timeoutMs: 5000 });
  t.same(brief(noStart.frames), [
    ['SUPPLIERS', 'PENDING', ''],
    ['SUPPLIERS', 'ERROR', 'E_SCRIPT_START'],
    ['SESSION', 'ERROR', 'E_SCRIPT_START'],
  ], 'a missing program: E_SCRIPT_START');
  t.equal(noStart.closeCode, 1000);

  // items-do.php is not executable (mode 644): running it directly cannot start.
  t.notOk(fs.statSync(path.join(FIXTURES, 'items-do.php')).mode & 0o111, 'the fixture is not executable');
  const notExec = await server({ 'aggregator.script.items': path.join(FIXTURES, 'items-do.php') }, true);
  const noExec = await search(notExec.wsBase, demoRequest('normal'), { timeoutMs: 5000 });
  t.same(invariantViolations(noExec.frames), []);
  t.same(
    taskViews(noExec.frames).filter((v) => v.kind === 'ITEMS').map((v) => v.error),
    ['E_SCRIPT_START', 'E_SCRIPT_START', 'E_SCRIPT_START'],
    'a program that is not executable: E_SCRIPT_START',
  );
});

t.test('the pool size holds across sessions', async (t) => {
  const srv = await server({ 'aggregator.pool.executor': 2 });
  const suppliers = (s: string) => ['1', '2'].map((n) => ({ name: `${s}${n}`, sleep: 0.15, items: [{ n }] }));
  let maxBusy = 0;
  let maxProcs = 0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      const s = await getStats(srv.httpBase);
      maxBusy = Math.max(maxBusy, s.poolBusy);
      maxProcs = Math.max(maxProcs, processesMatching(MARK).length);
      await sleep(20);
    }
  })();
  const results = await Promise.all(['x', 'y', 'z'].map((s) => search(srv.wsBase, fixtureRequest(suppliers(s)), { timeoutMs: 8000 })));
  polling = false;
  await poll;
  for (const res of results) {
    t.same(invariantViolations(res.frames), []);
    t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' });
  }
  t.equal(maxBusy, 2, 'poolBusy reached 2 and never more');
  t.ok(maxProcs <= 2 && maxProcs >= 1, `never more than 2 script processes (${maxProcs})`);
});

/** A big search (8 scripts of 0.3 s) holds a pool of 2; then a small one (1 script) arrives. */
async function bigThenSmall(order: 'fair' | 'fifo'): Promise<{ ended: string[]; starts: string[] }> {
  const srv = await server({ 'aggregator.pool.executor': 2, 'aggregator.pool.order': order });
  const log = startLog();
  const big = Array.from({ length: 8 }, (_, i) => ({ name: `big${i}`, log: log.file, sleep: 0.3 }));
  const ended: string[] = [];
  let small: Promise<unknown> | undefined;
  const bigSearch = search(srv.wsBase, fixtureRequest(big), {
    timeoutMs: 10000,
    onFrame: (f) => {
      if (f._task !== 'SUPPLIERS' || f._status !== 'SUCCESS') return;
      small = waitFor(() => log.starts().length >= 2, 5000)
        .then(() => search(srv.wsBase, fixtureRequest([{ name: 'small', log: log.file, sleep: 0.3 }]), { timeoutMs: 10000 }))
        .then(() => void ended.push('small'));
    },
  }).then(() => void ended.push('big'));
  await bigSearch;
  await small;
  return { ended, starts: log.starts() };
}

t.test('fairness: a small search is not held back by a big one', async (t) => {
  const { ended, starts } = await bigThenSmall('fair');
  t.same(ended, ['small', 'big'], 'the small search ends first');
  t.equal(starts.length, 9);
  t.ok(starts.indexOf('small') <= 4, `the small search got one of the next free slots (start #${starts.indexOf('small') + 1} of 9)`);
});

t.test('aggregator.pool.order=fifo: one global queue', async (t) => {
  const { starts } = await bigThenSmall('fifo');
  t.equal(starts.length, 9);
  t.equal(starts.indexOf('small'), 8, 'the small search waits behind every queued task of the big one');
});

t.test('the script timeout counts from the process start, not from the queueing', async (t) => {
  const srv = await server({ 'aggregator.pool.executor': 1, 'aggregator.timeout.script': 1.5 });
  const at = new Map<string, number>();
  const res = await search(
    srv.wsBase,
    fixtureRequest(['a', 'b'].map((name) => ({ name, info: { name }, sleep: 0.9, items: [] }))),
    {
      timeoutMs: 8000,
      onFrame: (f) => void at.set(`${(f._info as { name?: string } | undefined)?.name ?? f._task} ${f._status}`, performance.now()),
    },
  );
  t.same(invariantViolations(res.frames), []);
  t.same(taskViews(res.frames).map((v) => v.status), ['SUCCESS', 'SUCCESS', 'SUCCESS'], 'both 0.9 s scripts succeed');
  const waited = (at.get('b SUCCESS') ?? 0) - (at.get('b PENDING') ?? 0);
  t.ok(waited > 1700, `b was pending ${Math.round(waited)} ms in all, more than the 1.5 s script timeout`);
});

t.test('a script that ignores SIGTERM is SIGKILLed after aggregator.timeout.kill', async (t) => {
  const srv = await server({
    'aggregator.script.items': `/bin/sh ${path.join(FIXTURES, 'items-stubborn.sh')} ${MARK}`,
    'aggregator.timeout.script': 0.4,
    'aggregator.timeout.kill': 0.5,
  });
  const at = new Map<string, number>();
  const res = await search(srv.wsBase, fixtureRequest([{ name: 's' }]), {
    timeoutMs: 8000,
    onFrame: (f) => void at.set(`${f._task} ${f._status}`, performance.now()),
  });
  t.same(invariantViolations(res.frames), []);
  t.match(taskViews(res.frames)[1], { status: 'ERROR', error: 'E_SCRIPT_TIMEOUT' });
  const ms = (at.get('ITEMS ERROR') ?? 0) - (at.get('ITEMS PENDING') ?? 0);
  t.ok(ms >= 850 && ms < 5000, `ended after the timeout plus the kill delay (${Math.round(ms)} ms)`);
  t.same(await leftovers(MARK, 1000), [], 'the whole group is gone');
});

t.test('a grandchild that keeps stdout open neither holds the task nor outlives it', async (t) => {
  const srv = await server({ 'aggregator.timeout.script': 5 });
  const at = new Map<string, number>();
  const res = await search(srv.wsBase, fixtureRequest([{ name: 'h', holdstdout: MARK, items: [{ a: 1 }] }]), {
    timeoutMs: 8000,
    onFrame: (f) => void at.set(`${f._task} ${f._status}`, performance.now()),
  });
  t.same(invariantViolations(res.frames), []);
  t.match(taskViews(res.frames)[1], { status: 'SUCCESS', items: [{ a: 1 }] }, 'the answer counts: the script itself exited 0');
  const ms = (at.get('ITEMS SUCCESS') ?? 0) - (at.get('ITEMS PENDING') ?? 0);
  t.ok(ms < 2500, `done when the script exited, not when the pipe closed (${Math.round(ms)} ms; the grandchild sleeps 30 s)`);
  t.same(await leftovers(MARK, 1000), [], 'the grandchild was killed with its group');
});

t.test('a script that never reads stdin and writes invalid UTF-8 does not break anything', async (t) => {
  const srv = await server({ 'aggregator.script.items': `/bin/sh ${path.join(FIXTURES, 'items-deaf.sh')} ${MARK}` });
  // A 2 MB supplier object on the stdin nobody reads.
  const res = await search(srv.wsBase, fixtureRequest([{ name: 'deaf', grow: 2_000_000 }, { name: 'small' }]), { timeoutMs: 8000 });
  t.same(invariantViolations(res.frames), []);
  const items = taskViews(res.frames).filter((v) => v.kind === 'ITEMS');
  t.equal(items.length, 2);
  t.ok(items.every((v) => v.status === 'SUCCESS' || v.error === 'E_ITEMS_JSON'), 'each task ends normally');
  t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' });
  t.equal(res.closeCode, 1000);
  t.equal((await fetch(`${srv.httpBase}/health`)).status, 200, 'the server still serves');
});

t.test('aggregator.limit.send-buffer: a browser that stops reading is dropped like a closed one', async (t) => {
  const srv = await server({ 'aggregator.pool.executor': 4, 'aggregator.limit.send-buffer': '64KB' });
  // 4 × 50 items of 100 KB: far more than the loopback socket buffers can absorb.
  const suppliers = ['a', 'b', 'c', 'd'].map((name) => ({ name, bytes: 100_000, count: 50 }));
  let received = 0;
  const ws = new WebSocket(`${srv.wsBase}/ws`);
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('error', () => undefined);
  ws.on('message', () => received++);
  ws.on('open', () => ws.send(JSON.stringify(fixtureRequest(suppliers))));
  // Stop reading once the items start flowing.
  t.ok(await waitFor(() => received > 0, 5000), 'frames arrived');
  (ws as unknown as { _socket: { pause(): void } })._socket.pause();
  t.ok(await waitFor(() => srv.agg.stats.sessionAlive === 0, 8000), 'the server ended the session');
  t.match(srv.agg.stats.toJSON(), { taskPending: 0, taskRunning: 0 }, 'its tasks ended');
  t.ok(await waitFor(() => srv.agg.pool.busy === 0, 2000), 'its scripts were killed (the pool is free)');
  (ws as unknown as { _socket: { resume(): void } })._socket.resume();
  t.equal(await closed, 1006, 'the socket was dropped, not closed politely');
  t.ok(received < 4 * 50 + 6, `the browser did not get everything (${received} frames)`);
});

t.test('server.allowed-origins: 403 on the upgrade for another Origin', async (t) => {
  const srv = await server({ 'server.allowed-origins': 'http://shop.example, https://other.example' }, true);
  t.equal(await upgradeStatus(`${srv.wsBase}/ws`, { Origin: 'http://evil.example' }), 403, 'a foreign Origin is refused');
  t.equal(await upgradeStatus(`${srv.wsBase}/ws`, { Origin: 'https://other.example' }), 101, 'a listed Origin is accepted');
  const res = await search(srv.wsBase, demoRequest('emptySuppliers'), { headers: { Origin: 'http://shop.example' }, timeoutMs: 5000 });
  t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' }, 'and searches');
  const open = await server({}, true);
  t.equal(await upgradeStatus(`${open.wsBase}/ws`, { Origin: 'http://evil.example' }), 101, 'without the setting any Origin is accepted');
});

t.test('no php process is left behind', async (t) => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  t.same(await leftovers(MARK), [], `no process carries ${MARK}`);
});
