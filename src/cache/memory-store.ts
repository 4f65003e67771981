// The in-process items cache (the default when aggregator.cache.redis is empty): bounded by
// total bytes (aggregator.cache.size), least recently used answers out first, each answer
// dropped ttl after it was stored. lru-cache does the bookkeeping (maxSize + sizeCalculation
// for the byte bound, ttl for expiry); this module only decides what a byte is and when an
// answer may not be kept.
import { LRUCache } from 'lru-cache';
import type { CacheStore, Lookup, StoreOutcome } from './store.js';

/**
 * Bytes counted per entry besides the answer itself: the 67-character key string, the
 * Buffer object and lru-cache's slots for it come to roughly this on V8. Without it a flood
 * of tiny answers (`{"items":[]}`) would hold far more memory than aggregator.cache.size says.
 */
export const ENTRY_OVERHEAD_BYTES = 256;

/** purgeStale walks every entry: storedBytes() does it at most this often (scrapes read it several times). */
const PURGE_INTERVAL_MS = 1000;

export interface MemoryStoreOptions {
  /** aggregator.cache.size: answers + ENTRY_OVERHEAD_BYTES each stay at or below it. */
  maxBytes: number;
  /** aggregator.cache.ttl in ms (> 0): an answer is not served once this old. */
  ttlMs: number;
}

const HIT = (value: Buffer): Lookup => ({ status: 'hit', value });
const MISS: Lookup = { status: 'miss' };

export class MemoryStore implements CacheStore {
  readonly kind = 'memory';
  readonly #lru: LRUCache<string, Buffer>;
  #purgedAt = -Infinity;

  constructor(opts: MemoryStoreOptions) {
    if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 1) throw new RangeError(`cache size must be a positive integer of bytes, not ${opts.maxBytes}`);
    if (!Number.isSafeInteger(opts.ttlMs) || opts.ttlMs < 1) throw new RangeError(`cache ttl must be a positive integer of ms, not ${opts.ttlMs}`);
    this.#lru = new LRUCache<string, Buffer>({
      maxSize: opts.maxBytes,
      sizeCalculation: (value) => value.length + ENTRY_OVERHEAD_BYTES,
      ttl: opts.ttlMs,
      // The age of an answer is the age of the supplier's data: a hit must never make it
      // younger (lru-cache's default, said here because it is what bounds stale prices).
      updateAgeOnGet: false,
      allowStale: false,
      // No ttlAutopurge (a timer per entry): expired answers are dropped when looked up,
      // pushed out by newer ones, or purged before storedBytes() is read.
    });
  }

  get(key: string): Promise<Lookup> {
    const value = this.#lru.get(key);
    return Promise.resolve(value === undefined ? MISS : HIT(value));
  }

  set(key: string, value: Buffer): Promise<StoreOutcome> {
    if (value.length + ENTRY_OVERHEAD_BYTES > this.#lru.maxSize) {
      // lru-cache would refuse it too; an older answer under the key is dropped (not left
      // to outlive the newer one we could not keep).
      this.#lru.delete(key);
      return Promise.resolve('skipped');
    }
    // Our own copy, exactly as long as the answer: the caller's Buffer may be a view into a
    // larger allocation (a pooled slab, a read chunk) that would stay alive uncounted, and
    // the caller may reuse it.
    const copy = Buffer.allocUnsafeSlow(value.length);
    value.copy(copy);
    this.#lru.set(key, copy);
    return Promise.resolve('stored');
  }

  /**
   * Bytes of answers plus ENTRY_OVERHEAD_BYTES each. Expired answers are purged first, at
   * most once per PURGE_INTERVAL_MS, so ones that expired within the last second may count.
   */
  storedBytes(): number {
    const now = performance.now();
    if (now - this.#purgedAt >= PURGE_INTERVAL_MS) {
      this.#purgedAt = now;
      this.#lru.purgeStale();
    }
    return this.#lru.calculatedSize;
  }

  /** Answers held now, expired ones not yet purged included (tests and /debug). */
  get entries(): number {
    return this.#lru.size;
  }

  close(): Promise<void> {
    this.#lru.clear();
    return Promise.resolve();
  }
}
