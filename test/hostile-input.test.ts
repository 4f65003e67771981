// Hostile WebSocket input against a real server on a real port. More than 10,000 generated frames
// (fast-check, fixed seed, so a failure can be replayed) on thousands of connections: every first
// frame gets what docs/protocol.md (Request) says — one SESSION ERROR frame E_REQUEST_JSON /
// E_ILLEGAL_REQUEST and close 4400, or a search that ends normally — or is rejected by the
// WebSocket layer (1009 too big, 1007 not UTF-8). Further frames on a connection never change that.
// Then raw TCP clients break the framing and vanish mid-frame. Through all of it the server answers
// /health, /stats keeps its invariants, no prototype is polluted and the heap returns near its
// baseline.
import net from 'node:net';
import path from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import type { StatsJson } from '../src/stats.js';
import { FIXTURES, type TestServer, demoRequest, invariantViolations, search, startServer, waitFor } from './helpers/harness.js';
import { type Conn, LIMIT, check, connection, describe, expected, follower, inBatches, run } from './helpers/hostile-frames.js';
import { heapAfterGc } from './helpers/procs.js';
import { clientFrame, rawUpgrade, serverCloseCode } from './helpers/raw-ws.js';

const SEED = Number(process.env.HOSTILE_SEED ?? 20240606);
const CONNECTIONS = Number(process.env.HOSTILE_CONNECTIONS ?? 3500);
const REUSE_CONNECTIONS = 120;
const REUSE_FRAMES = 40;
const CONCURRENCY = 48;
const MB = 1024 * 1024;
// Valid requests reach the suppliers step: a script that answers "no suppliers" at once.
const NO_SUPPLIERS = `/bin/echo '{"suppliers":[]}'`;

let framesSent = 0;

const getStats = async (srv: TestServer) => (await (await fetch(`${srv.httpBase}/stats`)).json()) as StatsJson;

function statsViolations(s: StatsJson): string[] {
  const bad: string[] = [];
  if (s.sessionTotal !== s.sessionAlive + s.sessionFinished) bad.push('sessionTotal != alive + finished');
  if (s.taskTotal !== s.taskPending + s.taskSucceeded + s.taskFailed) bad.push('taskTotal != pending + succeeded + failed');
  if (s.taskRunning > s.taskPending || s.poolBusy > s.poolSize) bad.push('running > pending or busy > size');
  for (const [k, v] of Object.entries(s)) if (typeof v === 'number' && v < 0) bad.push(`${k} < 0`);
  return bad;
}

const prototypeKeys = () =>
  [Object.prototype, Array.prototype, Function.prototype, String.prototype].map((p) => Object.getOwnPropertyNames(p).sort().join());

// ---------------------------------------------------------------- the tests

t.test('generated hostile frames', async (t) => {
  const protoBefore = prototypeKeys();
  // INFO, not the harness's DEBUG: thousands of sessions, and the request lines (with hostile
  // field values) are logged at INFO anyway.
  const srv = await startServer({
    'aggregator.script.suppliers': NO_SUPPLIERS,
    'aggregator.timeout.session': 5,
    'logging.level.me.blzr.aggregator': 'info',
  });
  t.teardown(() => srv.close());

  const conns = fc.sample(connection, { numRuns: CONNECTIONS, seed: SEED });
  const frames = conns.reduce((n, c) => n + 1 + c.more.length, 0);
  framesSent += frames;
  t.comment(`${frames} frames on ${conns.length} connections (seed ${SEED})`);

  const failures: string[] = [];
  const outcomes = new Map<string, number>();
  let healthChecks = 0;
  let statsBad: string[] = [];
  const probe = setInterval(() => {
    void fetch(`${srv.httpBase}/health`).then((r) => r.status === 200 && healthChecks++);
    void getStats(srv).then((s) => (statsBad = statsBad.concat(statsViolations(s))));
  }, 200);
  t.teardown(() => clearInterval(probe));

  // Warm up first, so the heap baseline includes what the server keeps for good (compiled code).
  const warm = conns.slice(0, 300);
  const rest = conns.slice(300);
  const runOne = async (conn: Conn) => {
    const seen = await run(srv.wsBase, conn);
    const want = expected(conn.first);
    const key = want.kind === 'error' ? want.code : want.kind === 'ws-close' ? `close ${want.code}` : 'search';
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    const bad = check(conn, seen);
    if (bad.length > 0 && failures.length < 20) failures.push(`${describe(conn.first)} (+${conn.more.length}): ${bad.join('; ')}`);
  };
  await inBatches(warm, CONCURRENCY, runOne);
  await waitFor(() => srv.agg.sessions.size === 0, 5000);
  const heap0 = heapAfterGc();
  await inBatches(rest, CONCURRENCY, runOne);
  clearInterval(probe);

  t.same(failures, [], 'every connection got what docs/protocol.md (or the WebSocket layer) says');
  t.comment(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  for (const kind of ['E_REQUEST_JSON', 'E_ILLEGAL_REQUEST', 'search', 'close 1009', 'close 1007'])
    t.ok((outcomes.get(kind) ?? 0) > 0, `the generator reached "${kind}"`);
  t.ok(healthChecks > 0, `/health answered 200 during the run (${healthChecks} times)`);
  t.same([...new Set(statsBad)], [], '/stats invariants held at every probe');

  t.ok(await waitFor(() => srv.agg.sessions.size === 0 && srv.agg.pool.busy === 0, 5000), 'every session ended');
  const s = await getStats(srv);
  t.same(statsViolations(s), []);
  t.match(s, { sessionAlive: 0, taskPending: 0, taskRunning: 0, poolBusy: 0 }, 'nothing left open');
  t.equal(s.sessionTotal, conns.length, 'one session per connection, each counted once');

  const growth = heapAfterGc() - heap0;
  t.ok(growth < 16 * MB, `heap back near its baseline after ${rest.length} connections (+${(growth / MB).toFixed(1)} MB)`);
  t.same(prototypeKeys(), protoBefore, 'no property was added to Object/Array/Function/String.prototype');
  t.equal(({} as Record<string, unknown>).polluted, undefined, '({}).polluted is undefined');
  t.equal(([] as unknown as Record<string, unknown>).polluted, undefined);
});

t.test('many hostile frames on one connection while its search runs', async (t) => {
  const srv = await startServer({ 'aggregator.script.suppliers': `${path.join(FIXTURES, 'slow-no-suppliers.sh')} 0.8` });
  t.teardown(() => srv.close());
  const followers = fc.sample(fc.array(follower, { minLength: REUSE_FRAMES, maxLength: REUSE_FRAMES }), {
    numRuns: REUSE_CONNECTIONS,
    seed: SEED + 1,
  });
  framesSent += REUSE_CONNECTIONS * (REUSE_FRAMES + 1);
  const failures: string[] = [];
  await inBatches(followers, 40, async (more) => {
    const request = { data: Buffer.from(JSON.stringify(demoRequest('reuse'))), binary: false };
    const seen = await run(srv.wsBase, { first: request, more });
    const reused = seen.frames.filter((f) => f._task === 'SESSION' && f._error === 'E_SESSION_REUSED');
    const bad = check({ first: request, more }, seen);
    if (reused.length !== more.length) bad.push(`${reused.length} E_SESSION_REUSED for ${more.length} frames`);
    if (bad.length > 0 && failures.length < 10) failures.push(bad.join('; '));
  });
  t.same(failures, [], `each of ${REUSE_FRAMES} further frames got one E_SESSION_REUSED; every search still ended with SUCCESS`);
  t.equal((await getStats(srv)).sessionAlive, 0);
});

t.test('at least 10,000 generated frames were sent', async (t) => {
  t.ok(framesSent >= 10_000, `${framesSent} frames`);
});

t.test('a 10 MB frame and nesting 100,000 deep', async (t) => {
  // JSON.parse in V8 is not recursive, so depth alone cannot crash it; the server must also
  // never re-serialise what it parsed (JSON.stringify is recursive and overflows near 4,000).
  const big = await startServer({});
  const roomy = await startServer({ 'aggregator.limit.request-size': '1MB', 'aggregator.script.suppliers': `/bin/echo '{"suppliers":[]}'` });
  t.teardown(async () => {
    await big.close();
    await roomy.close();
  });
  const n = 100_000;
  const tenMb = await run(big.wsBase, { first: { data: Buffer.alloc(10 * MB, 0x61), binary: false }, more: [] });
  t.ok(tenMb.code === 1009 || (tenMb.code === 1006 && tenMb.error !== undefined), `10 MB: close ${tenMb.code} (1009)`);
  t.equal(tenMb.frames.length, 0);

  const cases: [string, string, string][] = [
    ['arrays', '['.repeat(n) + ']'.repeat(n), 'E_ILLEGAL_REQUEST'],
    ['objects', '{"a":'.repeat(n) + '1' + '}'.repeat(n), 'E_ILLEGAL_REQUEST'],
    ['in a required field', `{"code":${'['.repeat(n)}${']'.repeat(n)},"brand":"b","apikey":"k","analog":1}`, 'E_ILLEGAL_REQUEST'],
    ['unclosed', '['.repeat(n), 'E_REQUEST_JSON'],
    ['in an extra field', `{"code":"c","brand":"b","apikey":"k","analog":1,"x":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`, 'search'],
  ];
  for (const [name, body, want] of cases) {
    const res = await search(roomy.wsBase, body);
    if (want === 'search') {
      t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' }, `${name}: the search runs (the extra field is dropped)`);
      t.same(invariantViolations(res.frames), []);
    } else {
      t.same(
        res.frames.map((f) => f._error),
        [want],
        `${name}: ${want}`,
      );
      t.equal(res.closeCode, 4400);
    }
  }
  t.equal((await fetch(`${roomy.httpBase}/health`)).status, 200);
  t.equal((await fetch(`${big.httpBase}/health`)).status, 200);
});

t.test('raw TCP: connections closed mid-frame and frames that break the rules', async (t) => {
  const srv = await startServer({ 'aggregator.script.suppliers': `/bin/echo '{"suppliers":[]}'` });
  t.teardown(() => srv.close());
  const request = JSON.stringify(demoRequest('raw'));
  const half = (b: Buffer) => b.subarray(0, Math.ceil(b.length / 2));

  // Vanish in the middle of something: the session ends as closed by the browser.
  const vanish: [string, Buffer][] = [
    ['one byte of a header', clientFrame(1, request).subarray(0, 1)],
    ['a header announcing 100 bytes, then 10', clientFrame(1, 'x'.repeat(10), { announce: 100 })],
    ['half a valid request', half(clientFrame(1, request))],
    ['a first fragment (FIN=0) only', clientFrame(1, request.slice(0, 10), { fin: false })],
    ['the mask key cut in half', clientFrame(1, request).subarray(0, 4)],
    ['nothing at all', Buffer.alloc(0)],
  ];
  for (const [name, bytes] of vanish) {
    for (let i = 0; i < 10; i++) {
      const raw = await rawUpgrade(srv.port);
      raw.socket.write(bytes);
      raw.socket.destroy();
    }
    t.ok(await waitFor(() => srv.agg.sessions.size === 0, 5000), `${name} (x10): every session ended`);
  }

  // Break the framing: the WebSocket layer closes with 1002 (protocol error) or 1009 (too big).
  const broken: [string, Buffer, number][] = [
    ['an unmasked frame', clientFrame(1, request, { mask: false }), 1002],
    ['RSV1 set without an extension', clientFrame(1, request, { rsv: 4 }), 1002],
    ['an unknown opcode', clientFrame(3, 'x'), 1002],
    ['a ping longer than 125 bytes', clientFrame(9, 'p'.repeat(200)), 1002],
    ['a continuation with nothing to continue', clientFrame(0, 'x'), 1002],
    ['a fragmented ping', clientFrame(9, 'p', { fin: false }), 1002],
    ['a header announcing 2^53 bytes', clientFrame(2, 'x', { announce: 2 ** 53 }), 1009],
    ['a header announcing the limit + 1', clientFrame(1, 'x', { announce: LIMIT + 1 }), 1009],
  ];
  for (const [name, bytes, code] of broken) {
    const raw = await rawUpgrade(srv.port);
    raw.socket.on('error', () => {});
    raw.socket.write(bytes);
    await Promise.race([raw.closed, new Promise((r) => setTimeout(r, 5000))]);
    t.equal(serverCloseCode(raw), code, `${name}: close ${code}`);
    raw.socket.destroy();
  }

  // Half a handshake, then gone; and TCP half-close right after a valid request.
  for (let i = 0; i < 10; i++) {
    const sock = await new Promise<net.Socket>((resolve) => {
      const c = net.connect(srv.port, '127.0.0.1', () => resolve(c));
    });
    sock.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Up');
    sock.destroy();
    const raw = await rawUpgrade(srv.port);
    raw.socket.on('error', () => {});
    raw.socket.end(clientFrame(1, request));
    await Promise.race([raw.closed, new Promise((r) => setTimeout(r, 5000))]);
  }

  t.ok(await waitFor(() => srv.agg.sessions.size === 0, 5000), 'no session is left open');
  // A killed script frees its pool slot once it is reaped, just after its session ended.
  t.ok(await waitFor(() => srv.agg.pool.busy === 0, 5000), 'every pool slot is free again');
  t.equal((await fetch(`${srv.httpBase}/health`)).status, 200, '/health still answers');
  const s = await getStats(srv);
  t.same(statsViolations(s), []);
  t.match(s, { sessionAlive: 0, taskPending: 0, poolBusy: 0 });
  // The good client still gets a full search.
  const res = await search(srv.wsBase, demoRequest('after'));
  t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' });
});

t.test('scripts answering with __proto__, constructor and prototype keys pollute nothing', async (t) => {
  const protoBefore = prototypeKeys();
  const poison = '"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"}';
  const srv = await startServer({
    'aggregator.script.suppliers': `/bin/echo '{"suppliers":[{${poison},"info":{${poison}}}]}'`,
    'aggregator.script.items': `/bin/echo '{"items":[{${poison},"_id":"forged","name":"n"}],"suppliers":null}'`,
  });
  t.teardown(() => srv.close());
  const res = await search(srv.wsBase, `{${poison},"code":"c","brand":"b","apikey":"k","analog":1}`);
  t.same(invariantViolations(res.frames), []);
  const item = res.frames.find((f) => f._status === 'SENDING');
  t.ok(item, 'the item is sent');
  t.ok(Object.hasOwn(item ?? {}, '__proto__'), 'its __proto__ key arrives as plain data');
  t.equal(typeof item?._id, 'number', 'the reserved _id wins over the item’s own');
  t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' });
  t.same(prototypeKeys(), protoBefore, 'no prototype changed');
  t.equal(({} as Record<string, unknown>).polluted, undefined);
});
