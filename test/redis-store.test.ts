// The Redis items store against a real redis-server: binary-safe answers, Redis' own TTL,
// nothing of a supplier's params in Redis (keys, values, or any command sent), and the
// outages: Redis killed, restarted, frozen, a port that accepts and never answers, nothing
// listening at all. Every call resolves within its bound, as a bypass when Redis cannot
// answer, and each outage is one warning (and one info when it ends).
import net from 'node:net';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { cacheKey } from '../src/cache/key.js';
import { CALL_TIMEOUT_MS, KEY_PREFIX, RedisStore, redisWhere } from '../src/cache/redis-store.js';
import { freePort, waitFor } from './helpers/harness.js';
import { type RedisServer, startRedis } from './helpers/redis.js';

const HOUR = 3_600_000;
/** Far above CALL_TIMEOUT_MS (a CPU hog beside the test must not fail it), far below "hangs". */
const BOUND_MS = 2000;

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

function captureLog() {
  const lines: LogLine[] = [];
  const text: string[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => (text.push(s), lines.push(JSON.parse(s) as LogLine)) });
  return {
    log,
    text: () => text.join(''),
    warnings: () => lines.filter((l) => l.level === 40),
    backs: () => lines.filter((l) => l.msg === 'items cache: Redis available again'),
  };
}

async function redis(t: Test): Promise<RedisServer> {
  const server = await startRedis();
  t.teardown(() => server.stop());
  return server;
}

/** A plain ioredis client to look at what the store wrote. */
function inspector(t: Test, url: string): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on('error', () => {}); // it reconnects on its own; a test that needs it waits for it
  t.teardown(() => client.disconnect());
  return client;
}

function store(t: Test, url: string, log: ReturnType<typeof captureLog>['log'], ttlMs = HOUR): RedisStore {
  const s = new RedisStore({ url, ttlMs, log });
  t.teardown(() => s.close());
  return s;
}

/** ms the call took, and its result. */
async function timed<T>(call: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await call();
  return [value, performance.now() - start];
}

t.test('set then get: the exact bytes, binary-safe, under aggregator:items:<key>', async (t) => {
  const server = await redis(t);
  const logs = captureLog();
  const s = store(t, server.url, logs.log);
  t.ok(await s.connected(5000), 'connected');
  const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i)); // NUL, CR, LF, invalid UTF-8
  const big = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
  for (const [name, value] of [
    ['every byte value', every],
    ['1 MB', big],
    ['empty', Buffer.alloc(0)],
  ] as const) {
    const key = cacheKey('items', `{"case":"${name}"}\n`);
    t.equal(await s.set(key, value), 'stored', `${name}: stored`);
    const got = await s.get(key);
    t.equal(got.status, 'hit', `${name}: hit`);
    if (got.status === 'hit') t.ok(got.value.equals(value), `${name}: the same ${value.length} bytes`);
    const raw = await inspector(t, server.url).getBuffer(KEY_PREFIX + key);
    t.ok(raw?.equals(value), `${name}: Redis holds the raw bytes`);
  }
  t.equal((await s.get(cacheKey('items', '{"never":"stored"}\n'))).status, 'miss');
  t.equal(s.storedBytes(), every.length + big.length, 'bytes this instance stored');
  t.same(logs.warnings(), []);
});

t.test('entries expire by Redis TTL', async (t) => {
  const server = await redis(t);
  const s = store(t, server.url, captureLog().log, 400);
  t.ok(await s.connected(5000));
  const other = inspector(t, server.url);
  const key = cacheKey('items', '{"ttl":1}\n');
  t.equal(await s.set(key, Buffer.from('{"items":[]}')), 'stored');
  const pttl = await other.pttl(KEY_PREFIX + key);
  t.ok(pttl > 0 && pttl <= 400, `Redis holds it with PTTL ${pttl} ms (SET … PX 400)`);
  t.ok(await waitFor(async () => (await other.exists(KEY_PREFIX + key)) === 0, 10_000), 'Redis dropped it');
  t.equal((await s.get(key)).status, 'miss');
});

t.test('supplier params never reach Redis in clear: keys, values, commands', async (t) => {
  const server = await redis(t);
  const logs = captureLog();
  const s = store(t, server.url, logs.log);
  t.ok(await s.connected(5000));
  const secrets = ['shop-login-7731', 'Pa55w0rd-7731', 'apikey-7731-XYZ'];
  const line = `${JSON.stringify({ info: { supplier: 'normal-1' }, code: '3310', params: { login: secrets[0], password: secrets[1], apikey: secrets[2] } })}\n`;
  const key = cacheKey('/usr/bin/php script/items.php', line);

  // Every command Redis receives while the store works, as MONITOR shows them.
  const monitor = await inspector(t, server.url).monitor();
  t.teardown(() => monitor.disconnect());
  const seen: string[] = [];
  monitor.on('monitor', (_time: string, args: string[]) => seen.push(args.join(' ')));
  t.equal(await s.set(key, Buffer.from('{"items":[{"code":"3310","price":12.5}]}')), 'stored');
  t.equal((await s.get(key)).status, 'hit');
  t.ok(await waitFor(() => seen.some((c) => c.startsWith('get ') || c.startsWith('GET ')), 5000), 'MONITOR saw the GET');

  const other = inspector(t, server.url);
  const keys = await other.keys('*');
  t.same(keys, [KEY_PREFIX + key], 'one key, the hash');
  t.match(keys[0], /^aggregator:items:v1:[0-9a-f]{64}$/);
  const values = await Promise.all(keys.map((k) => other.getBuffer(k)));
  const everything = [...keys, ...values.map((v) => v?.toString('latin1') ?? ''), ...seen, logs.text()].join('\n');
  for (const secret of secrets) t.notOk(everything.includes(secret), `"${secret}" is in no key, value, command or log line`);
});

t.test('Redis killed: calls bypass at once, one warning; restarted: works again, one info', async (t) => {
  const server = await redis(t);
  const logs = captureLog();
  const s = store(t, server.url, logs.log);
  t.ok(await s.connected(5000));
  const key = cacheKey('items', '{"kill":1}\n');
  t.equal(await s.set(key, Buffer.from('before')), 'stored');

  await server.kill();
  for (let i = 0; i < 20; i++) {
    const [got, ms] = await timed(() => s.get(key));
    t.equal(got.status, 'bypass');
    t.ok(ms < BOUND_MS, `get ${i} answered in ${ms.toFixed(1)} ms`);
  }
  const [stored, setMs] = await timed(() => s.set(key, Buffer.from('during')));
  t.equal(stored, 'bypass', 'a set bypasses too (and does not throw)');
  t.ok(setMs < BOUND_MS);
  t.equal(logs.warnings().length, 1, 'one warning for the outage, not one per call');
  t.equal(s.available, false);
  t.match(logs.warnings()[0], { redis: redisWhere(server.url), msg: 'items cache: Redis unavailable, searches go on without the cache' });

  await server.start(); // an empty Redis: nothing was saved
  t.ok(await waitFor(async () => (await s.get(key)).status !== 'bypass', 15_000), 'the store uses Redis again');
  t.equal((await s.get(key)).status, 'miss', 'the restarted Redis is empty');
  t.equal(await s.set(key, Buffer.from('after')), 'stored');
  const got = await s.get(key);
  t.ok(got.status === 'hit' && got.value.toString() === 'after');
  t.equal(logs.backs().length, 1, 'one info when it is back');
  t.equal(logs.warnings().length, 1, 'still the one warning');

  await server.kill();
  t.ok(await waitFor(async () => (await s.get(key)).status === 'bypass', 5000));
  t.equal(logs.warnings().length, 2, 'a second outage is a second warning');
  t.equal(s.outages, 2);
});

t.test('a frozen Redis (SIGSTOP): a call bypasses within its bound; SIGCONT: works again', async (t) => {
  const server = await redis(t);
  const logs = captureLog();
  const s = store(t, server.url, logs.log);
  t.ok(await s.connected(5000));
  const key = cacheKey('items', '{"frozen":1}\n');
  t.equal(await s.set(key, Buffer.from('x')), 'stored');

  server.pause();
  const [got, ms] = await timed(() => s.get(key));
  t.equal(got.status, 'bypass');
  t.ok(ms >= CALL_TIMEOUT_MS - 2 && ms < BOUND_MS, `waited its bound (${CALL_TIMEOUT_MS} ms), no longer: ${ms.toFixed(1)} ms`);
  const [stored, setMs] = await timed(() => s.set(key, Buffer.from('y')));
  t.equal(stored, 'bypass');
  t.ok(setMs < BOUND_MS, `set: ${setMs.toFixed(1)} ms`);
  // While it is down the calls skip Redis (but for one probe a second): no search waits.
  const [, quick] = await timed(() => s.get(key));
  t.ok(quick < CALL_TIMEOUT_MS, `the next call bypasses without waiting: ${quick.toFixed(1)} ms`);
  t.equal(logs.warnings().length, 1);
  t.match(logs.warnings()[0], { reason: `no answer within ${CALL_TIMEOUT_MS} ms` });

  server.resume();
  t.ok(await waitFor(async () => (await s.get(key)).status === 'hit', 15_000), 'answers again once it runs');
  t.equal(logs.backs().length, 1);
  t.equal(logs.warnings().length, 1);
});

t.test('a port that accepts connections and never answers: bypass within the bound', async (t) => {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const silent = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('data', () => {}); // read everything, write nothing
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  const address = silent.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const logs = captureLog();
  const s = store(t, `redis://127.0.0.1:${port}/0`, logs.log);
  t.ok(await waitFor(() => connections > 0, 5000), 'the store connected');
  const [got, getMs] = await timed(() => s.get('v1:x'));
  t.equal(got.status, 'bypass');
  t.ok(getMs < BOUND_MS, `get: ${getMs.toFixed(1)} ms`);
  const [stored, setMs] = await timed(() => s.set('v1:x', Buffer.from('x')));
  t.equal(stored, 'bypass');
  t.ok(setMs < BOUND_MS, `set: ${setMs.toFixed(1)} ms`);
  // The connection never becomes ready; the client gives up on it and reports it once.
  t.ok(await waitFor(() => logs.warnings().length > 0, 10_000), 'a warning');
  t.ok(await waitFor(() => connections >= 2, 10_000), 'and keeps trying in the background');
  t.equal(logs.warnings().length, 1, 'one warning, however many attempts');
  const [, closeMs] = await timed(() => s.close());
  t.ok(closeMs < BOUND_MS, `close() does not wait for it: ${closeMs.toFixed(1)} ms`);
});

t.test('nothing listening from the start: bypass, one warning', async (t) => {
  const port = await freePort();
  const logs = captureLog();
  const s = store(t, `redis://127.0.0.1:${port}/0`, logs.log);
  t.equal(await s.connected(5000), false);
  for (let i = 0; i < 5; i++) {
    const [got, ms] = await timed(() => s.get('v1:x'));
    t.equal(got.status, 'bypass');
    t.ok(ms < BOUND_MS);
  }
  t.equal(logs.warnings().length, 1);
  t.match(logs.warnings()[0], { reason: /ECONNREFUSED/ });
});

t.test('Redis refusing writes (OOM under noeviction): reads go on, one warning, no outage', async (t) => {
  const server = await redis(t);
  const logs = captureLog();
  const s = store(t, server.url, logs.log);
  t.ok(await s.connected(5000));
  const key = cacheKey('items', '{"oom":1}\n');
  t.equal(await s.set(key, Buffer.from('kept')), 'stored');
  const admin = inspector(t, server.url);
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  await admin.config('SET', 'maxmemory', '1');
  for (let i = 0; i < 3; i++) t.equal(await s.set(cacheKey('items', `{"oom":${i + 2}}\n`), Buffer.from('new')), 'bypass', 'refused');
  const got = await s.get(key);
  t.ok(got.status === 'hit' && got.value.toString() === 'kept', 'reads still work');
  t.equal(logs.warnings().length, 1, 'one warning for the refusals');
  t.match(logs.warnings()[0], { reply: /^OOM/ });
  t.equal(s.available, true, 'not an outage');
  t.equal(s.outages, 0);
});

t.test('URLs are checked; a log line names host:port/db, never the password', async (t) => {
  t.throws(() => new RedisStore({ url: 'localhost:6379', ttlMs: 1000, log: captureLog().log }), RangeError);
  t.throws(() => new RedisStore({ url: 'http://localhost:6379', ttlMs: 1000, log: captureLog().log }), RangeError);
  t.throws(() => new RedisStore({ url: 'redis://localhost:6379/x', ttlMs: 1000, log: captureLog().log }), RangeError);
  t.equal(redisWhere('redis://:s3cret@cache.internal:6380/2'), 'cache.internal:6380/2');
  t.equal(redisWhere('redis://cache.internal'), 'cache.internal:6379/0');

  const port = await freePort();
  const logs = captureLog();
  const s = store(t, `redis://user:s3cret-pw@127.0.0.1:${port}/3`, logs.log);
  await s.connected(5000);
  t.ok(await waitFor(() => logs.warnings().length > 0, 5000));
  t.notOk(logs.text().includes('s3cret-pw'), 'no password in the log');
  t.match(logs.warnings()[0], { redis: `127.0.0.1:${port}/3` });
});
