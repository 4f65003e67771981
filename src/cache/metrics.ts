// The items cache in /metrics: hits, misses and bypasses as counters, the stored bytes as a
// gauge, all read from the cache's stats() at scrape time (the same pattern as the /stats
// figures in src/metrics.ts), so the cache itself knows nothing of prom-client.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { CacheStats } from './items-cache.js';

export interface CacheStatsSource {
  stats(): CacheStats;
}

const COUNTERS: [name: string, help: string, figure: 'hits' | 'misses' | 'bypasses'][] = [
  ['aggregator_cache_hits_total', 'Items lookups answered from the cache (no script run)', 'hits'],
  ['aggregator_cache_misses_total', 'Items lookups the cache had no answer for (a script ran)', 'misses'],
  ['aggregator_cache_bypasses_total', 'Items lookups that skipped the cache because Redis was down or slow', 'bypasses'],
];

/** Registers the cache metrics on `registry` (one Registry per app, as in src/metrics.ts). */
export function registerCacheMetrics(registry: Registry, source: CacheStatsSource): void {
  const registers = [registry];
  for (const [name, help, figure] of COUNTERS) {
    new Counter({
      name,
      help,
      registers,
      collect() {
        // The cache's count is the truth; the counter mirrors it at scrape time.
        this.reset();
        this.inc(source.stats()[figure]);
      },
    });
  }
  new Gauge({
    name: 'aggregator_cache_stored_bytes',
    help: 'Bytes of cached items answers: held in process, or (Redis) stored by this instance and not yet expired',
    registers,
    collect() {
      this.set(source.stats().storedBytes);
    },
  });
}
