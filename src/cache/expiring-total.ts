// A running total of sizes that each drop out ttl after they were added: what one instance
// has written to Redis and Redis still holds (at most: Redis may evict earlier under
// maxmemory). Every add has the same ttl, so expiry times only grow and a queue suffices;
// adds within one bucket share an entry, so the queue never holds more than about
// BUCKETS entries whatever the traffic.

const BUCKETS = 1000;
const MIN_BUCKET_MS = 1000;

export class ExpiringTotal {
  readonly #ttlMs: number;
  readonly #bucketMs: number;
  readonly #now: () => number;
  /** [expiry time, bytes], oldest first. */
  readonly #queue: [at: number, bytes: number][] = [];
  #total = 0;

  /** `now` is injectable for tests; monotonic ms (performance.now) by default. */
  constructor(ttlMs: number, now: () => number = () => performance.now()) {
    this.#ttlMs = ttlMs;
    // An entry may be counted up to one bucket past its ttl: a second, or ttl/1000 for long ttls.
    this.#bucketMs = Math.max(MIN_BUCKET_MS, Math.ceil(ttlMs / BUCKETS));
    this.#now = now;
  }

  add(bytes: number): void {
    const at = Math.ceil((this.#now() + this.#ttlMs) / this.#bucketMs) * this.#bucketMs;
    const last = this.#queue[this.#queue.length - 1];
    if (last && last[0] === at) last[1] += bytes;
    else this.#queue.push([at, bytes]);
    this.#total += bytes;
  }

  value(): number {
    const now = this.#now();
    let head = this.#queue[0];
    while (head && head[0] <= now) {
      this.#total -= head[1];
      this.#queue.shift();
      head = this.#queue[0];
    }
    return this.#total;
  }

  /** Entries in the queue (tests: it stays bounded). */
  get buckets(): number {
    return this.#queue.length;
  }
}
