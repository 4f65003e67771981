// The items cache as the task flow sees it (issue 13): get before an ITEMS task runs its
// script, set after a successful run, join to share one run between identical tasks, and
// the figures /metrics shows. aggregator.cache.ttl = 0 (the default) turns all of it off:
// no store is created, no Redis connection is opened, get always misses uncounted, set does
// nothing and join just calls run. Otherwise the store is the in-process LRU, or with
// aggregator.cache.redis one Redis shared by every instance.
import type { Logger } from '../logger.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore, checkRedisUrl, redisWhere } from './redis-store.js';
import { type SharedRun, SingleFlight } from './single-flight.js';
import type { CacheStore } from './store.js';

export interface ItemsCacheOptions {
  /** aggregator.cache.ttl in ms; 0 = no cache. */
  ttlMs?: number;
  /** aggregator.cache.size in bytes: the bound of the in-process store (unused with Redis). */
  sizeBytes?: number;
  /** aggregator.cache.redis; empty or absent = the in-process store. */
  redisUrl?: string | null;
}

/** The configuration's defaults for the three keys: off, 64 MB, no Redis. */
export const CACHE_DEFAULTS = { ttlMs: 0, sizeBytes: 64 * 1024 * 1024, redisUrl: '' } as const;

export interface CacheStats {
  /** Lookups answered from the cache. */
  hits: number;
  /** Lookups the cache had no answer for. */
  misses: number;
  /** Lookups that could not ask the store (Redis down or slow); hits + misses + bypasses = lookups. */
  bypasses: number;
  /** Bytes held (memory), or stored by this instance and not yet expired (Redis). */
  storedBytes: number;
}

export interface ItemsCache<R> {
  readonly enabled: boolean;
  readonly backend: 'off' | 'memory' | 'redis';
  /** The stored stdout for `key` (cacheKey()), or undefined (miss, bypass, or off). Never rejects. */
  get(key: string): Promise<Buffer | undefined>;
  /** Stores a successful run's stdout under `key`; fire and forget (never throws, never waits). */
  set(key: string, stdout: Buffer): void;
  /**
   * SingleFlight.join across every session of this instance (onStarted: when the shared run
   * reports its start); with the cache off, run(signal, started) for this caller alone.
   */
  join(key: string, signal: AbortSignal | undefined, run: SharedRun<R>, onStarted?: () => void): Promise<R>;
  stats(): CacheStats;
  /** Closes the store (the Redis connection); get and set are no-ops afterwards. */
  close(): Promise<void>;
}

/**
 * Throws a RangeError for options that cannot work (startup should fail on them, naming the
 * key). `R` is what one shared run resolves to (the runner's result), for join.
 */
export function createItemsCache<R>(options: ItemsCacheOptions, log: Pick<Logger, 'warn' | 'info' | 'error'>): ItemsCache<R> {
  const { ttlMs = CACHE_DEFAULTS.ttlMs, sizeBytes = CACHE_DEFAULTS.sizeBytes } = options;
  const redisUrl = options.redisUrl?.trim() ?? CACHE_DEFAULTS.redisUrl;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 0) throw new RangeError(`aggregator.cache.ttl: expected ms >= 0, got ${ttlMs}`);
  if (ttlMs === 0) return disabled<R>();
  if (redisUrl !== '') {
    try {
      checkRedisUrl(redisUrl);
    } catch (err) {
      throw new RangeError(`aggregator.cache.redis: ${(err as Error).message}`);
    }
  } else if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 1) {
    throw new RangeError(`aggregator.cache.size: expected bytes > 0, got ${sizeBytes}`);
  }

  const store: CacheStore = redisUrl !== '' ? new RedisStore({ url: redisUrl, ttlMs, log }) : new MemoryStore({ maxBytes: sizeBytes, ttlMs });
  const flight = new SingleFlight<R>();
  const counts = { hits: 0, misses: 0, bypasses: 0 };
  let closed = false;
  log.info({ backend: store.kind, ttlMs, ...(redisUrl !== '' ? { redis: redisWhere(redisUrl) } : { sizeBytes }) }, 'items cache on');

  return {
    enabled: true,
    backend: store.kind,
    async get(key) {
      if (closed) return undefined;
      const found = await store.get(key);
      if (found.status === 'hit') {
        counts.hits++;
        return found.value;
      }
      if (found.status === 'miss') counts.misses++;
      else counts.bypasses++;
      return undefined;
    },
    set(key, stdout) {
      if (closed) return;
      // Stores never reject; should one ever, a fire-and-forget rejection must not become
      // an unhandled rejection (which ends the process).
      store.set(key, stdout).catch((err: unknown) => log.error({ err }, 'items cache: store failed (a bug)'));
    },
    join: (key, signal, run, onStarted) => flight.join(key, signal, run, onStarted),
    stats: () => ({ ...counts, storedBytes: closed ? 0 : store.storedBytes() }),
    async close() {
      if (closed) return;
      closed = true;
      await store.close();
    },
  };
}

function disabled<R>(): ItemsCache<R> {
  return {
    enabled: false,
    backend: 'off',
    get: () => Promise.resolve(undefined),
    set: () => {},
    // No sharing without the cache (sharing runs is part of the cache feature); a signal is still
    // handed over, so the run's code path is the same either way.
    join: (_key, signal, run, onStarted) => run(signal ?? new AbortController().signal, () => onStarted?.()),
    stats: () => ({ hits: 0, misses: 0, bypasses: 0, storedBytes: 0 }),
    close: () => Promise.resolve(),
  };
}
