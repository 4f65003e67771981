// The items cache facade: off unless a ttl is set (then nothing is created, not even a Redis
// connection), the in-process store by default, one Redis shared by several instances with
// aggregator.cache.redis, hits/misses/bypasses counted, single flight only when on, and the
// figures in /metrics.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { CACHE_DEFAULTS, type ItemsCache, type ItemsCacheOptions, createItemsCache } from '../src/cache/items-cache.js';
import { cacheKey } from '../src/cache/key.js';
import { ENTRY_OVERHEAD_BYTES } from '../src/cache/memory-store.js';
import { registerCacheMetrics } from '../src/cache/metrics.js';
import { waitFor } from './helpers/harness.js';
import { startRedis } from './helpers/redis.js';

const ITEMS = '/usr/bin/php -d display_errors=stderr script/items.php';
const line = (code: string, login = 'shop-a') => `${JSON.stringify({ info: { supplier: 'normal-1' }, code, params: { login } })}\n`;
const answer = (code: string) => Buffer.from(`${JSON.stringify({ items: [{ code, price: 12.5, quantity: 3 }] })}\n`);

function capture() {
  const lines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { log, warnings: () => lines.filter((l) => l.level === 40), lines };
}

function cache<R = string>(t: Test, options: ItemsCacheOptions, log = capture().log): ItemsCache<R> {
  const c = createItemsCache<R>(options, log);
  t.teardown(() => c.close());
  return c;
}

t.test('off by default: no store, no Redis connection, nothing counted, no sharing', async (t) => {
  t.equal(CACHE_DEFAULTS.ttlMs, 0, 'the default ttl is 0');
  const server = await startRedis();
  t.teardown(() => server.stop());
  const off = cache(t, {});
  const offWithRedis = cache(t, { ttlMs: 0, redisUrl: server.url });
  for (const c of [off, offWithRedis]) {
    t.equal(c.enabled, false);
    t.equal(c.backend, 'off');
    const key = cacheKey(ITEMS, line('3310'));
    c.set(key, answer('3310'));
    t.equal(await c.get(key), undefined, 'set stored nothing');
    t.same(c.stats(), { hits: 0, misses: 0, bypasses: 0, storedBytes: 0 });
    let runs = 0;
    const run = async () => `run ${++runs}`;
    t.same(await Promise.all([c.join(key, undefined, run), c.join(key, undefined, run)]), ['run 1', 'run 2'], 'join just runs');
    let told = 0;
    await c.join(key, undefined, async (_signal, started) => (started(), 'run'), () => told++);
    t.equal(told, 1, "the run's start is reported to its one caller");
  }
  // A cache that is on connects within milliseconds; the one that is off and was created
  // first must not have connected by then.
  const on = cache(t, { ttlMs: 60_000, redisUrl: server.url });
  t.ok(await waitFor(async () => (await on.get('v1:probe')) === undefined && on.stats().misses > 0, 5000), 'the enabled one talks to Redis');
  const admin = new Redis(server.url);
  t.teardown(() => admin.disconnect());
  const clients = String(await admin.client('LIST'));
  t.equal(clients.split('\n').filter((l) => l.includes('name=aggregator-items-cache')).length, 1, 'one cache connection: the enabled one');
});

t.test('in-process store: hits and misses counted, stored bytes, sharing on', async (t) => {
  const c = cache(t, { ttlMs: 60_000, sizeBytes: 1024 * 1024 });
  t.equal(c.enabled, true);
  t.equal(c.backend, 'memory');
  const key = cacheKey(ITEMS, line('3310'));
  t.equal(await c.get(key), undefined);
  c.set(key, answer('3310'));
  t.same(await c.get(key), answer('3310'));
  t.same(await c.get(key), answer('3310'));
  t.equal(await c.get(cacheKey(ITEMS, line('3310', 'shop-b'))), undefined, "another shop's login misses");
  t.same(c.stats(), { hits: 2, misses: 2, bypasses: 0, storedBytes: answer('3310').length + ENTRY_OVERHEAD_BYTES });

  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const run = async () => {
    runs++;
    await gate;
    return 'shared';
  };
  const joined = [c.join(key, undefined, run), c.join(key, undefined, run), c.join(key, new AbortController().signal, run)];
  release();
  t.same(await Promise.all(joined), ['shared', 'shared', 'shared']);
  t.equal(runs, 1, 'one run for three identical tasks');

  await c.close();
  t.equal(await c.get(key), undefined, 'closed: nothing served');
  t.equal(c.stats().storedBytes, 0);
});

t.test('Redis: two instances share answers; Redis down → bypasses counted, searches go on', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.stop());
  const logsA = capture();
  const a = cache(t, { ttlMs: 60_000, redisUrl: server.url, sizeBytes: 1 }, logsA.log);
  const b = cache(t, { ttlMs: 60_000, redisUrl: server.url });
  t.equal(a.backend, 'redis');
  const key = cacheKey(ITEMS, line('3310'));
  t.ok(await waitFor(async () => (await b.get(key)) === undefined && b.stats().misses > 0, 5000), 'b connected: a miss');
  a.set(key, answer('3310')); // fire and forget
  t.ok(await waitFor(() => a.stats().storedBytes > 0, 5000), 'a stored it');
  t.equal(a.stats().storedBytes, answer('3310').length);
  t.same(await b.get(key), answer('3310'), 'instance b is answered from what instance a stored');
  t.equal(b.stats().hits, 1);

  await server.kill();
  const before = a.stats();
  const got = await Promise.all([1, 2, 3].map(() => a.get(key)));
  t.same(got, [undefined, undefined, undefined], 'searches go on as on a miss');
  t.same(a.stats(), { ...before, bypasses: before.bypasses + 3 }, 'counted as bypasses, not misses');
  a.set(key, answer('3310')); // must not throw or reject
  t.equal(logsA.warnings().length, 1, 'one warning');
});

t.test('bad options fail at startup, naming the key', async (t) => {
  const log = capture().log;
  t.throws(() => createItemsCache({ ttlMs: -1 }, log), { name: 'RangeError', message: /aggregator\.cache\.ttl/ });
  t.throws(() => createItemsCache({ ttlMs: 1.5 }, log), { message: /aggregator\.cache\.ttl/ });
  t.throws(() => createItemsCache({ ttlMs: 1000, sizeBytes: 0 }, log), { message: /aggregator\.cache\.size/ });
  t.throws(() => createItemsCache({ ttlMs: 1000, redisUrl: 'localhost:6379' }, log), { message: /aggregator\.cache\.redis/ });
  t.throws(() => createItemsCache({ ttlMs: 1000, redisUrl: 'http://cache:6379' }, log), { message: /aggregator\.cache\.redis/ });
  t.equal(createItemsCache({ ttlMs: 0, sizeBytes: 0, redisUrl: 'nonsense' }, log).enabled, false, 'off: the other keys are not read');
});

t.test('/metrics: hits, misses, bypasses and stored bytes, read at scrape time', async (t) => {
  const c = cache(t, { ttlMs: 60_000, sizeBytes: 1024 * 1024 });
  const registry = new Registry();
  registry.setDefaultLabels({ instance: 'node-t' });
  registerCacheMetrics(registry, c);
  const key = cacheKey(ITEMS, line('3310'));
  await c.get(key);
  c.set(key, answer('3310'));
  await c.get(key);
  await c.get(key);
  const text = await registry.metrics();
  const value = (name: string) => Number(new RegExp(`^${name}\\{instance="node-t"\\} (\\S+)$`, 'm').exec(text)?.[1]);
  t.equal(value('aggregator_cache_hits_total'), 2);
  t.equal(value('aggregator_cache_misses_total'), 1);
  t.equal(value('aggregator_cache_bypasses_total'), 0);
  t.equal(value('aggregator_cache_stored_bytes'), answer('3310').length + ENTRY_OVERHEAD_BYTES);
  t.match(text, /# TYPE aggregator_cache_hits_total counter/);
  t.match(text, /# TYPE aggregator_cache_stored_bytes gauge/);
  await c.get(key);
  t.equal(Number(/^aggregator_cache_hits_total\{instance="node-t"\} (\S+)$/m.exec(await registry.metrics())?.[1]), 3, 'a later scrape sees the new count');
});
