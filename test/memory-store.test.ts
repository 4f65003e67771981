// The in-process items store: exact bytes back, a byte bound (answers + a fixed overhead
// each) with the least recently used answer out first, and expiry ttl after the store
// (a hit never makes an answer younger).
import t from 'tap';
import { ENTRY_OVERHEAD_BYTES, MemoryStore } from '../src/cache/memory-store.js';
import { waitFor } from './helpers/harness.js';

const HOUR = 3_600_000;
const bytes = (n: number, fill: number) => Buffer.alloc(n, fill);
const status = async (store: MemoryStore, key: string) => (await store.get(key)).status;

t.test('a stored answer comes back byte for byte, as the store\'s own copy', async (t) => {
  const store = new MemoryStore({ maxBytes: 1024 * 1024, ttlMs: HOUR });
  const answer = Buffer.from([0x7b, 0x00, 0xff, 0x0a, 0x0d, 0xe2, 0x82, 0xac, 0x7d]);
  t.equal(await store.set('v1:a', answer), 'stored');
  const got = await store.get('v1:a');
  t.equal(got.status, 'hit');
  if (got.status === 'hit') t.same([...got.value], [...answer]);
  answer.fill(0); // the caller reusing its buffer must not change the cached answer
  const again = await store.get('v1:a');
  if (again.status === 'hit') t.same([...again.value], [0x7b, 0x00, 0xff, 0x0a, 0x0d, 0xe2, 0x82, 0xac, 0x7d]);
  t.equal(await status(store, 'v1:unknown'), 'miss');
  t.equal(store.storedBytes(), answer.length + ENTRY_OVERHEAD_BYTES);
});

t.test('the byte bound: answers + overhead never exceed maxBytes; the oldest goes first', async (t) => {
  const entry = 1000 + ENTRY_OVERHEAD_BYTES;
  const store = new MemoryStore({ maxBytes: 3 * entry, ttlMs: HOUR });
  for (const k of ['a', 'b', 'c']) await store.set(k, bytes(1000, k.charCodeAt(0)));
  t.equal(store.storedBytes(), 3 * entry, 'three fit exactly');
  await store.set('d', bytes(1000, 0x64));
  t.equal(store.entries, 3);
  t.equal(store.storedBytes(), 3 * entry);
  t.equal(await status(store, 'a'), 'miss', 'a (least recently used) is out');
  t.same(await Promise.all(['b', 'c', 'd'].map((k) => status(store, k))), ['hit', 'hit', 'hit']);

  // One big answer pushes out as many as it needs, no more.
  await store.set('big', bytes(2 * entry - ENTRY_OVERHEAD_BYTES, 0x42));
  t.equal(await status(store, 'b'), 'miss');
  t.equal(await status(store, 'c'), 'miss');
  t.equal(await status(store, 'd'), 'hit');
  t.ok(store.storedBytes() <= 3 * entry);
});

t.test('LRU order: a hit makes an answer recently used', async (t) => {
  const entry = 100 + ENTRY_OVERHEAD_BYTES;
  const store = new MemoryStore({ maxBytes: 3 * entry, ttlMs: HOUR });
  for (const k of ['a', 'b', 'c']) await store.set(k, bytes(100, 1));
  t.equal(await status(store, 'a'), 'hit'); // a is now the most recently used
  await store.set('d', bytes(100, 1));
  t.equal(await status(store, 'b'), 'miss', 'b, not a, was least recently used');
  t.equal(await status(store, 'a'), 'hit');
  await store.set('e', bytes(100, 1)); // c is the oldest now (a and d were touched after it)
  t.equal(await status(store, 'c'), 'miss');
  t.same(await Promise.all(['a', 'd', 'e'].map((k) => status(store, k))), ['hit', 'hit', 'hit']);
});

t.test('an answer too big for the store is not kept and evicts nothing', async (t) => {
  const store = new MemoryStore({ maxBytes: 4096, ttlMs: HOUR });
  await store.set('small', bytes(100, 1));
  await store.set('k', bytes(100, 2));
  t.equal(await store.set('k', bytes(4096, 3)), 'skipped', 'answer + overhead > maxBytes');
  t.equal(await status(store, 'small'), 'hit', 'nothing else was pushed out');
  t.equal(await status(store, 'k'), 'miss', 'the older answer under the same key is gone too');
  t.equal(store.storedBytes(), 100 + ENTRY_OVERHEAD_BYTES);
});

t.test('ttl: an answer expires ttl after its store, however often it is read', async (t) => {
  const store = new MemoryStore({ maxBytes: 1024 * 1024, ttlMs: 300 });
  const keeper = new MemoryStore({ maxBytes: 1024 * 1024, ttlMs: HOUR });
  await store.set('k', bytes(10, 1));
  await keeper.set('k', bytes(10, 1));
  t.equal(await status(store, 'k'), 'hit', 'fresh');
  // Read it all the time: were a hit to reset its age, it would never expire.
  let reads = 0;
  const expired = await waitFor(async () => {
    reads++;
    return (await status(store, 'k')) === 'miss';
  }, 10_000, 10);
  t.ok(expired, `expired after ${reads} reads`);
  t.equal(await status(keeper, 'k'), 'hit', 'the same answer with a long ttl is still there');
  t.ok(await waitFor(() => store.storedBytes() === 0, 5000), 'storedBytes no longer counts it');
  // Storing again starts a new ttl.
  await store.set('k', bytes(10, 2));
  t.equal(await status(store, 'k'), 'hit');
});

t.test('options are checked', async (t) => {
  t.throws(() => new MemoryStore({ maxBytes: 0, ttlMs: 1000 }), RangeError);
  t.throws(() => new MemoryStore({ maxBytes: 1024, ttlMs: 0 }), RangeError);
  t.throws(() => new MemoryStore({ maxBytes: 1.5, ttlMs: 1000 }), RangeError);
  const store = new MemoryStore({ maxBytes: 1024, ttlMs: 1000 });
  await store.set('k', bytes(10, 1));
  await store.close();
  t.equal(await status(store, 'k'), 'miss', 'close() empties it');
});
