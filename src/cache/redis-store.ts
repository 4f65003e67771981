// The shared items cache (aggregator.cache.redis): one Redis for every instance, so a part
// searched on one instance is hot on all. Redis is an optimisation, never a dependency: every
// call is bounded by CALL_TIMEOUT_MS and resolves (never rejects) as a bypass when Redis is
// down or slow, the client reconnects in the background, and an outage is logged once when
// it starts and once when it ends.
//
// Values are the items script's raw stdout bytes (`SET key value PX ttl`, `GET key` read as
// a Buffer), so a hit replays exactly what the script printed; Redis' own TTL expires them.
// Keys are `aggregator:items:` + cacheKey() (a hash): supplier params never reach Redis.
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { ExpiringTotal } from './expiring-total.js';
import type { CacheStore, Lookup, StoreOutcome } from './store.js';

export const KEY_PREFIX = 'aggregator:items:';

/**
 * The bound of every GET and SET. A healthy Redis on the LAN answers in well under 1 ms and
 * an items script takes seconds, so 100 ms is two orders of magnitude above a working Redis
 * yet invisible next to a script run; it is what a search pays, at most, when Redis hangs.
 */
export const CALL_TIMEOUT_MS = 100;

/**
 * While Redis is down or slow, calls bypass it at once (they would fail or time out anyway);
 * one call in this interval still goes to Redis as a probe, so a Redis that merely stopped
 * answering is noticed when it answers again. A dropped connection is noticed sooner: the
 * client's `ready` event ends the outage.
 */
export const PROBE_INTERVAL_MS = 1000;

/** Background reconnects: 100, 200, 400 … ms, then every 2 s for as long as it takes. */
const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 2000;
/** A TCP connect (or a connection with commands waiting and no byte back) that takes longer is dropped and retried. */
const CONNECT_TIMEOUT_MS = 1000;
const SOCKET_TIMEOUT_MS = 1000;
/** At most this many distinct Redis error replies (OOM, READONLY, …) are warned about. */
const MAX_REPLY_WARNINGS = 20;

export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). */
  url: string;
  /** aggregator.cache.ttl in ms (> 0): Redis expires each answer this long after its SET. */
  ttlMs: number;
  log: Pick<Logger, 'warn' | 'info'>;
  /** Tests only: the call bound (default CALL_TIMEOUT_MS) and probe interval. */
  timeoutMs?: number;
  probeIntervalMs?: number;
}

type Bounded<T> = { kind: 'ok'; value: T } | { kind: 'error'; error: Error } | { kind: 'timeout' };

/**
 * `promise`'s outcome, or `timeout` after `ms`. The timer's callback waits one setImmediate
 * before it gives up: after an event-loop stall (GC, a big JSON parse) timers run before
 * I/O, so a reply already sitting in the socket would otherwise lose to the timer.
 */
function bounded<T>(promise: Promise<T>, ms: number): Promise<Bounded<T>> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome: Bounded<T>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const timer = setTimeout(() => setImmediate(() => settle({ kind: 'timeout' })), ms);
    promise.then(
      (value) => settle({ kind: 'ok', value }),
      (error: unknown) => settle({ kind: 'error', error: error instanceof Error ? error : new Error(String(error)) }),
    );
  });
}

/** host:port/db of a Redis URL: what a log line may say about it (never the password). */
export function redisWhere(url: string): string {
  const u = new URL(url);
  const db = u.pathname.replace(/^\//, '') || '0';
  return `${u.hostname}:${u.port || '6379'}/${db}`;
}

/** Throws unless `url` is a redis:// or rediss:// URL ioredis can use. */
export function checkRedisUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RangeError('not a URL; expected redis://host:port/db');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new RangeError(`expected redis:// or rediss://, not ${u.protocol}//`);
  if (!u.hostname) throw new RangeError('no host; expected redis://host:port/db');
  if (!/^\/?\d*$/.test(u.pathname)) throw new RangeError('the path must be a database number, as in redis://host:6379/0');
}

const BYPASS: Lookup = { status: 'bypass' };
const MISS: Lookup = { status: 'miss' };

export class RedisStore implements CacheStore {
  readonly kind = 'redis';
  readonly #client: Redis;
  readonly #log: RedisStoreOptions['log'];
  readonly #where: string;
  readonly #ttlMs: number;
  readonly #timeoutMs: number;
  readonly #probeMs: number;
  readonly #stored: ExpiringTotal;
  /** undefined until the first connection or failure; false during an outage. */
  #up: boolean | undefined = undefined;
  #downSince = 0;
  #probeAt = 0;
  #outages = 0;
  #closed = false;
  readonly #repliesWarned = new Set<string>();

  constructor(opts: RedisStoreOptions) {
    checkRedisUrl(opts.url);
    if (!Number.isSafeInteger(opts.ttlMs) || opts.ttlMs < 1) throw new RangeError(`cache ttl must be a positive integer of ms, not ${opts.ttlMs}`);
    this.#log = opts.log;
    this.#where = redisWhere(opts.url);
    this.#ttlMs = opts.ttlMs;
    this.#timeoutMs = opts.timeoutMs ?? CALL_TIMEOUT_MS;
    this.#probeMs = opts.probeIntervalMs ?? PROBE_INTERVAL_MS;
    this.#stored = new ExpiringTotal(opts.ttlMs);
    // Loaded here, not at start-up: ioredis adds about 20 MB of RSS, and most instances have no Redis.
    const { Redis: Client } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
    this.#client = new Client(opts.url, {
      // A command while disconnected fails at once instead of waiting in a queue for a
      // Redis that may never come back; one in flight when the connection drops fails too
      // (no resend after reconnect: its caller has long moved on).
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // Never give up reconnecting (a returned number keeps ioredis retrying), capped so a
      // Redis that is back is used again within seconds.
      retryStrategy: (times: number) => Math.min(RETRY_BASE_MS * 2 ** (times - 1), RETRY_MAX_MS),
      connectTimeout: CONNECT_TIMEOUT_MS,
      // A Redis that stops sending while commands wait (frozen, or the network dropped) gets
      // its connection destroyed and rebuilt; bounded() already freed the callers. No
      // commandTimeout: it would race bounded()'s own timer and lose replies after a stall.
      socketTimeout: SOCKET_TIMEOUT_MS,
      // RESP2: GET and SET need nothing newer, and it works on every Redis (RESP3 needs 6+).
      protocol: 2,
      connectionName: 'aggregator-items-cache',
    });
    this.#client.on('ready', () => this.#markUp());
    // Only the message: an ioredis error may carry the command, whose arguments are our
    // key and the stored answer.
    this.#client.on('error', (err: Error) => this.#markDown(err.message));
    this.#client.on('close', () => this.#markDown('connection closed'));
  }

  /** How Redis is now: true when the last contact worked, false during an outage. */
  get available(): boolean | undefined {
    return this.#up;
  }

  /** Outages since start (each logged once as a warning). */
  get outages(): number {
    return this.#outages;
  }

  /** Resolves true once connected, false after `ms` or at the first failure (tests, startup). */
  connected(ms: number): Promise<boolean> {
    if (this.#up !== undefined) return Promise.resolve(this.#up);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#client.off('ready', onReady);
        this.#client.off('error', onError);
        resolve(ok);
      };
      const onReady = () => done(true);
      const onError = () => done(false);
      const timer = setTimeout(() => done(false), ms);
      this.#client.once('ready', onReady);
      this.#client.once('error', onError);
    });
  }

  async get(key: string): Promise<Lookup> {
    const out = await this.#call(() => this.#client.getBuffer(KEY_PREFIX + key));
    if (out === undefined) return BYPASS;
    return out === null ? MISS : { status: 'hit', value: out };
  }

  async set(key: string, value: Buffer): Promise<StoreOutcome> {
    const out = await this.#call(() => this.#client.set(KEY_PREFIX + key, value, 'PX', this.#ttlMs));
    if (out !== 'OK') return 'bypass';
    this.#stored.add(value.length);
    return 'stored';
  }

  /**
   * Bytes of answers this instance stored whose ttl has not run out (within a second or
   * ttl/1000): Redis may hold less (maxmemory evictions, overwrites by other instances) and
   * the shared total is the sum over instances. Counted locally: no Redis call at scrape time.
   */
  storedBytes(): number {
    return this.#stored.value();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // QUIT lets SETs already written finish; a Redis that does not answer gets no more time.
    if (this.#client.status === 'ready') await bounded(this.#client.quit(), this.#timeoutMs);
    this.#client.disconnect();
  }

  /** `op`'s value, or undefined when Redis was skipped, failed or did not answer in time. */
  async #call<T>(op: () => Promise<T>): Promise<T | undefined> {
    if (this.#closed) return undefined;
    if (this.#up === false) {
      const now = performance.now();
      if (now < this.#probeAt) return undefined;
      this.#probeAt = now + this.#probeMs;
    }
    let pending: Promise<T>;
    try {
      pending = op();
    } catch (err) {
      pending = Promise.reject(err); // the same bypass as a failure reported later
    }
    const out = await bounded(pending, this.#timeoutMs);
    if (out.kind === 'ok') {
      this.#markUp();
      return out.value;
    }
    if (out.kind === 'timeout') {
      this.#markDown(`no answer within ${this.#timeoutMs} ms`);
    } else if (out.error.name === 'ReplyError') {
      // Redis is up but refused this command (OOM under maxmemory with noeviction,
      // READONLY on a replica, NOPERM): no outage, but an operator must hear of it once.
      this.#warnReply(out.error.message);
    } else if (this.#up !== undefined) {
      // Before the first connection has even been tried to the end, a refused call is
      // just early; the connection's own 'error' event reports a real failure.
      this.#markDown(out.error.message);
    }
    return undefined;
  }

  #markDown(reason: string): void {
    if (this.#closed) return;
    if (this.#up !== false) {
      this.#up = false;
      this.#outages++;
      this.#downSince = performance.now();
      this.#log.warn({ redis: this.#where, reason }, 'items cache: Redis unavailable, searches go on without the cache');
    }
    this.#probeAt = performance.now() + this.#probeMs;
  }

  #markUp(): void {
    if (this.#closed || this.#up === true) return;
    const wasDown = this.#up === false;
    this.#up = true;
    if (wasDown) {
      this.#log.info({ redis: this.#where, downMs: Math.round(performance.now() - this.#downSince) }, 'items cache: Redis available again');
    } else {
      this.#log.info({ redis: this.#where }, 'items cache: connected to Redis');
    }
  }

  #warnReply(message: string): void {
    const code = message.split(' ', 1)[0] ?? message;
    if (this.#repliesWarned.has(code) || this.#repliesWarned.size >= MAX_REPLY_WARNINGS) return;
    this.#repliesWarned.add(code);
    this.#log.warn({ redis: this.#where, reply: message.slice(0, 200) }, 'items cache: Redis refused a command; answers are not cached');
  }
}
