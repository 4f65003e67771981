// Idle sockets (aggregator.timeout.request): a /ws connection that sends no request in time
// gets one SESSION ERROR frame E_SESSION_TIMEOUT and close 4408, so silent connections cannot
// hold every slot of aggregator.limit.sessions and lock real searches out. Real server, real
// WebSockets, real php demo scripts.
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { type AnyFrame, type TestServer, demoRequest, invariantViolations, search, startServer } from './helpers/harness.js';
import { demoScript, getStats, killLeftovers, marker, statsViolations } from './helpers/e2e.js';

// The demo scripts answer at once: the searches here are about slots, not speed.
process.env.AGGREGATOR_DEMO_DELAY_MS = '0';
const MARK = marker('idle');
const servers: TestServer[] = [];
t.teardown(async () => {
  await Promise.all(servers.map((s) => s.close()));
  for (const s of servers) fs.rmSync(s.logDir, { recursive: true, force: true });
  killLeftovers(MARK);
});

async function server(overrides: Record<string, string | number>): Promise<TestServer> {
  const srv = await startServer({
    'aggregator.script.suppliers': demoScript('suppliers', MARK),
    'aggregator.script.items': demoScript('items', MARK),
    ...overrides,
  });
  servers.push(srv);
  return srv;
}

interface Silent {
  opened: Promise<void>;
  /** Resolves at the close event with what the socket received. */
  closed: Promise<{ code: number; reason: string; frames: AnyFrame[] }>;
  isClosed(): boolean;
}

/** A /ws connection that never sends anything. */
function silentSocket(base: string): Silent {
  const ws = new WebSocket(`${base}/ws`);
  const frames: AnyFrame[] = [];
  let done = false;
  ws.on('message', (data) => frames.push(JSON.parse(String(data)) as AnyFrame));
  return {
    opened: new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    }),
    closed: new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        done = true;
        resolve({ code, reason: String(reason), frames });
      }),
    ),
    isClosed: () => done,
  };
}

/** The one frame an idle socket gets, whatever its session id. */
function checkIdleEnd(t: Test, end: { code: number; reason: string; frames: AnyFrame[] }): void {
  const frame = end.frames[0];
  t.equal(end.frames.length, 1, 'exactly one frame');
  t.same(frame, { _session: frame?._session, _task: 'SESSION', _status: 'ERROR', _error: 'E_SESSION_TIMEOUT' }, 'SESSION ERROR E_SESSION_TIMEOUT, nothing else in it');
  t.match(frame?._session, /^\d+$/, 'with its session id');
  t.equal(end.code, 4408, 'close 4408');
  t.equal(end.reason, 'E_SESSION_TIMEOUT');
}

t.test('a socket that sends no request gets one E_SESSION_TIMEOUT frame and close 4408', async (t) => {
  const srv = await server({ 'aggregator.timeout.request': 0.3 });
  const idle = silentSocket(srv.wsBase);
  await idle.opened;
  checkIdleEnd(t, await idle.closed);

  const stats = await getStats(srv.httpBase);
  t.same(statsViolations(stats), [], '/stats invariants hold');
  t.match(stats, { sessionTotal: 1, sessionAlive: 0, sessionFinished: 1, taskTotal: 0 }, 'a finished session, no task');
  const metrics = await (await fetch(`${srv.httpBase}/metrics`)).text();
  t.match(metrics, /^aggregator_errors_total\{scope="session",code="E_SESSION_TIMEOUT",instance="[^"]+"\} 1$/m, 'counted as a session timeout');

  // A search that asks in time is not cut, however long it then runs (1 s script timeouts here).
  const res = await search(srv.wsBase, demoRequest('itemsTimeout'));
  t.same(invariantViolations(res.frames), []);
  t.equal(res.frames.at(-1)?._status, 'SUCCESS', 'SESSION SUCCESS');
  t.equal(res.closeCode, 1000);
  t.ok(res.ms > 300, `it outlived the request timeout (${Math.round(res.ms)} ms)`);

  await srv.close();
  const ended = fs
    .readFileSync(path.join(srv.logDir, 'aggregator.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg?: string; state?: unknown; error?: string })
    .filter((l) => l.msg === 'session ended');
  t.same(
    ended.map((l) => [l.state, l.error]),
    [
      ['requestTimedOut', 'E_SESSION_TIMEOUT'],
      ['done', undefined],
    ],
    'the log tells an idle socket from a search',
  );
});

t.test('silent sockets fill aggregator.limit.sessions: a search is refused until they are cut, then succeeds', async (t) => {
  const LIMIT = 20;
  // Long enough for 20 handshakes and one refused search on a loaded machine; the test
  // waits on the sockets' close events, never on this time.
  const srv = await server({ 'aggregator.limit.sessions': LIMIT, 'aggregator.timeout.request': 2, 'aggregator.timeout.script': 5 });
  const silent = Array.from({ length: LIMIT }, () => silentSocket(srv.wsBase));
  await Promise.all(silent.map((s) => s.opened));
  t.equal((await getStats(srv.httpBase)).sessionAlive, LIMIT, 'every slot held by a silent socket');

  const refused = await search(srv.wsBase, demoRequest('normal'));
  t.equal(refused.closeCode, 1013, 'refused: close 1013');
  t.equal(refused.closeReason, 'E_TOO_MANY_SESSIONS');
  t.same(refused.frames, [], 'before any frame');
  t.notOk(
    silent.some((s) => s.isClosed()),
    'the silent sockets still held their slots when the search was refused',
  );

  const ends = await Promise.all(silent.map((s) => s.closed));
  for (const end of ends) checkIdleEnd(t, end);

  const res = await search(srv.wsBase, demoRequest('normal'));
  t.same(invariantViolations(res.frames), []);
  t.equal(res.frames.at(-1)?._task, 'SESSION');
  t.equal(res.frames.at(-1)?._status, 'SUCCESS', 'the search gets through once they are cut');
  t.equal(res.frames.filter((f) => f._status === 'SENDING').length, 9, 'with its 9 items');
  t.equal(res.closeCode, 1000);

  const stats = await getStats(srv.httpBase);
  t.same(statsViolations(stats), [], '/stats invariants hold');
  t.match(
    stats,
    { sessionTotal: LIMIT + 1, sessionAlive: 0, sessionFinished: LIMIT + 1, taskTotal: 4, taskSucceeded: 4, taskPending: 0 },
    'the silent sessions ended; the refused one never opened',
  );
});
