// /stats and /health end to end (docs/protocol.md, /stats): every field with its type, both invariants on
// every sample while searches of every kind (timeouts, browser closes, bad requests) run
// at once, and the final counts matching the frames the browsers saw.
import t from 'tap';
import WebSocket from 'ws';
import { type AnyFrame, type SearchResult, demoRequest, invariantViolations, search, startServer, waitFor } from './helpers/harness.js';
import { demoScript, getStats, killLeftovers, leftovers, marker, sleep, statsViolations, taskViews } from './helpers/e2e.js';

const MARK = marker('stats');
const FIELDS = [
  'uptime',
  'uptimeSeconds',
  'sessionTotal',
  'sessionAlive',
  'sessionFinished',
  'taskTotal',
  'taskPending',
  'taskRunning',
  'taskSucceeded',
  'taskFailed',
  'poolSize',
  'poolBusy',
];

t.test('/stats and /health', async (t) => {
  const srv = await startServer({
    'aggregator.script.suppliers': demoScript('suppliers', MARK),
    'aggregator.script.items': demoScript('items', MARK),
    'aggregator.pool.executor': 3,
    'aggregator.timeout.script': 0.5,
    'aggregator.timeout.session': 1.5,
  });
  t.teardown(async () => {
    await srv.close();
    killLeftovers(MARK);
  });

  await t.test('/health answers 200 {"status":"ok"}', async (t) => {
    const res = await fetch(`${srv.httpBase}/health`);
    t.equal(res.status, 200);
    t.match(res.headers.get('content-type'), /application\/json/);
    t.same(await res.json(), { status: 'ok' });
  });

  await t.test('every field of /stats with its type, at rest', async (t) => {
    const res = await fetch(`${srv.httpBase}/stats`);
    t.equal(res.status, 200);
    t.match(res.headers.get('content-type'), /application\/json/);
    const s = (await res.json()) as Record<string, unknown>;
    t.same(Object.keys(s).sort(), [...FIELDS].sort(), 'exactly the documented fields');
    t.type(s.uptime, 'string');
    t.match(s.uptime, /^(\d+d )?(\d+h )?(\d+m )?\d+s$/, 'uptime reads like "34m 45s"');
    for (const k of FIELDS.slice(1)) t.ok(Number.isInteger(s[k]) && (s[k] as number) >= 0, `${k} is an integer >= 0`);
    t.match(s, { sessionTotal: 0, sessionAlive: 0, sessionFinished: 0, taskTotal: 0, taskPending: 0, taskRunning: 0, poolSize: 3, poolBusy: 0 });
  });

  await t.test('echo scripts are not counted', async (t) => {
    const frames: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`${srv.wsBase}/echo?echo=xyz`);
      ws.on('message', (d) => frames.push(String(d)));
      ws.on('close', () => resolve());
      ws.on('error', reject);
    });
    t.ok(frames.length >= 1, 'the echo answered');
    t.match(await getStats(srv.httpBase), { taskTotal: 0, sessionTotal: 0, poolBusy: 0 });
  });

  await t.test('invariants hold on every sample under mixed load; the final counts add up', async (t) => {
    const samples: string[] = [];
    let sampleCount = 0;
    const check = (s: Parameters<typeof statsViolations>[0], where: string) => {
      sampleCount++;
      for (const v of statsViolations(s)) samples.push(`${where}: ${v}`);
    };
    // In-process samples on every frame, plus HTTP samples every 20 ms.
    const onFrame = () => check(srv.agg.stats.toJSON(), 'frame');
    let polling = true;
    const poll = (async () => {
      while (polling) {
        check(await getStats(srv.httpBase), 'http');
        await sleep(20);
      }
    })();

    const opts = { timeoutMs: 10000, onFrame };
    // A browser that leaves as soon as the suppliers step is done (all 3 ITEMS PENDING seen);
    // it keeps the frames it saw, since terminate() may end the search with a socket error.
    const leaver = async (how: 'close' | 'terminate') => {
      const seen: AnyFrame[] = [];
      await search(srv.wsBase, demoRequest('itemsTimeout'), {
        ...opts,
        onFrame: (f, ws) => {
          onFrame();
          seen.push(f);
          if (f._task === 'SUPPLIERS' && f._status === 'SUCCESS') ws[how]();
        },
      }).catch(() => undefined);
      return seen;
    };
    const complete = ['normal', 'analog', 'mixed', 'emptySuppliers', 'suppliersError', 'itemsTimeout', 'sessionTimeout'];
    const [done, closed, terminated, bad, silent] = await Promise.all([
      Promise.all(complete.map((code) => search(srv.wsBase, demoRequest(code), opts))),
      leaver('close'),
      leaver('terminate'),
      Promise.all(['{oops', '{"code":"normal"}'].map((text) => search(srv.wsBase, text, opts))),
      search(srv.wsBase, undefined, { ...opts, onOpen: (ws) => ws.close() }),
    ]);
    t.ok(await waitFor(() => srv.agg.stats.sessionAlive === 0, 5000), 'every session ended');
    polling = false;
    await poll;
    t.same(samples, [], `both invariants on all ${sampleCount} samples`);
    t.ok(sampleCount > 50, `sampled often (${sampleCount})`);

    for (const res of done) t.same(invariantViolations(res.frames), []);
    t.equal(done.at(-1)?.closeCode, 4408, 'the sessionTimeout search timed out');
    t.ok(bad.every((r: SearchResult) => r.closeCode === 4400));
    t.same(silent.frames, []);

    // Expected counts from the frames the browsers saw. A leaver's open tasks (it left right
    // after its last PENDING frame, so it saw every task) end as failed.
    let succeeded = 0;
    let failed = 0;
    for (const frames of [...done.map((r) => r.frames), closed, terminated])
      for (const v of taskViews(frames)) {
        if (v.status === 'SUCCESS') succeeded++;
        else failed++;
      }
    const sessions = complete.length + 2 + bad.length + 1;
    const s = await getStats(srv.httpBase);
    t.same(statsViolations(s), []);
    t.match(s, {
      sessionTotal: sessions,
      sessionAlive: 0,
      sessionFinished: sessions,
      taskTotal: succeeded + failed,
      taskPending: 0,
      taskRunning: 0,
      taskSucceeded: succeeded,
      taskFailed: failed,
      poolSize: 3,
      poolBusy: 0,
    });
    t.ok(s.uptimeSeconds >= 1, 'uptime advanced');
    t.same(await leftovers(MARK), [], 'no script process is left');
  });
});
