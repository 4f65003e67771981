// What the items cache needs from a place to keep answers: the in-process LRU
// (memory-store.ts) and the shared Redis (redis-store.ts) both offer it, so items-cache.ts
// chooses one by configuration and the task flow never knows which.

/**
 * A lookup's outcome. `bypass`: the store could not be asked (Redis down or slow); the
 * caller goes on as on a miss, but it is counted apart, because a miss means "not cached"
 * and a bypass means "the cache is not working".
 */
export type Lookup =
  | { readonly status: 'hit'; readonly value: Buffer }
  | { readonly status: 'miss' }
  | { readonly status: 'bypass' };

/** A store's outcome: kept, not kept on purpose (too big for the store), or store unusable. */
export type StoreOutcome = 'stored' | 'skipped' | 'bypass';

export interface CacheStore {
  readonly kind: 'memory' | 'redis';
  /** Never rejects; a hit's `value` is the store's own copy: read it, don't change it. */
  get(key: string): Promise<Lookup>;
  /** Keeps `value` for the store's ttl. Never rejects; callers may fire and forget it. */
  set(key: string, value: Buffer): Promise<StoreOutcome>;
  /** Bytes of answers held now (each store documents what exactly it counts). */
  storedBytes(): number;
  close(): Promise<void>;
}
