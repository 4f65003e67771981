// 9. Items cache, a hot part: the same search (one part number, N suppliers whose items script
// sleeps like a supplier API) again and again, against a server with aggregator.cache.ttl on
// and, in the same run, one with the cache off. Measured: the time from the request to the
// first item on a hit (searches one at a time), and searches/s at a fixed concurrency.
// Targets (issue 13): first item <= 5 ms after the request on a hit; >= 20 x the searches/s
// of the uncached run.
//
// The suppliers step is never cached (it is the shop's own script: it checks the apikey and
// names the suppliers), so a search always runs it. The timed servers answer it with
// /bin/echo of the part's fixed supplier list, as scenario 7 does: still a process through the
// pool, but not a PHP start (about 15-20 ms here), which would otherwise be most of what a hit
// takes. A third server runs the PHP suppliers script instead, for the figure a shop with a PHP
// suppliers step sees (info row).
import { Baseline } from './lib/baseline.js';
import { search } from './lib/client.js';
import { runWorkers, sideBySide } from './lib/load.js';
import { type AggregatorProcess, startAggregator } from './lib/procs.js';
import { fmt, notes, percentile, spread } from './lib/table.js';
import type { Mode, Result, Scenario } from './lib/types.js';

const PLAN = {
  full: { suppliers: 10, sleepMs: 100, items: 3, concurrency: 20, firstSamples: 300, offFirstSamples: 20, onSearches: 1000, offSearches: 60, rounds: 4 },
  smoke: { suppliers: 3, sleepMs: 50, items: 2, concurrency: 4, firstSamples: 10, offFirstSamples: 3, onSearches: 20, offSearches: 8, rounds: 1 },
};

/** A /metrics sample summed over its label sets that contain `labels`. */
async function metric(srv: AggregatorProcess, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${srv.httpBase}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name && (m[2] ?? '').includes(labels)) sum += Number(m[3]);
  }
  return sum;
}
const itemsRuns = (srv: AggregatorProcess) => metric(srv, 'aggregator_script_run_seconds_count', 'task="ITEMS"');
/** The frame that ends the suppliers step ("_task" comes before "_status" in every frame). */
const SUPPLIERS_DONE = /"_task":"SUPPLIERS".*"_status":"SUCCESS"/;
const hits = (srv: AggregatorProcess) => metric(srv, 'aggregator_cache_hits_total');
const misses = (srv: AggregatorProcess) => metric(srv, 'aggregator_cache_misses_total');

export const scenario: Scenario = {
  id: '9',
  title: 'items cache, a hot part',
  async run(mode: Mode): Promise<Result> {
    const p = PLAN[mode];
    // One part's suppliers: distinct objects (as a real list is), each answered by
    // bench/scripts/items.php after sleepMs with `items` items.
    const suppliers = Array.from({ length: p.suppliers }, (_, i) => ({ supplier: `supplier-${i + 1}`, sleep: p.sleepMs, items: p.items }));
    const echo = `/bin/echo '${JSON.stringify({ suppliers })}'`;
    const common = { 'aggregator.pool.executor': 20, 'aggregator.timeout.script': 10, 'aggregator.timeout.session': 60 };
    // The request's fields are what the PHP suppliers script reads; /bin/echo ignores them.
    const request = { n: p.suppliers, sleep: String(p.sleepMs), items: p.items };
    const itemsPerSearch = p.suppliers * p.items;
    const servers: AggregatorProcess[] = [];
    const baseline = Baseline.start();
    try {
      const on = await startAggregator({ ...common, 'aggregator.script.suppliers': echo, 'aggregator.cache.ttl': 3600 });
      servers.push(on);
      const off = await startAggregator({ ...common, 'aggregator.script.suppliers': echo });
      servers.push(off);
      const php = await startAggregator({ ...common, 'aggregator.cache.ttl': 3600 });
      servers.push(php);

      let failed = 0;
      // ms from the request to the suppliers task's SUCCESS frame, per timed search: what the
      // (never cached) suppliers step takes of the time to first item.
      const suppliersDone: number[] = [];
      const one = async (srv: AggregatorProcess, timeSuppliers = false) => {
        const t = await search(`${srv.wsBase}/ws`, request, {
          timeoutMs: 60_000,
          onFrame: timeSuppliers
            ? (data, ms) => {
                if (SUPPLIERS_DONE.test(data.toString('utf8'))) suppliersDone.push(ms);
              }
            : undefined,
        });
        if (!t.sessionOk || t.closeCode !== 1000 || t.items !== itemsPerSearch || t.firstItemMs === null) failed++;
        return t.firstItemMs ?? NaN;
      };
      // The first search fills the cache (each supplier runs once); a few more warm the
      // server's paths. Neither is counted.
      for (const srv of [on, php]) for (let i = 0; i < 5; i++) await one(srv);
      await one(off);
      failed = 0;
      const hitsBefore = await hits(on);
      const missesBefore = (await misses(on)) + (await misses(php));
      const offRunsBefore = await itemsRuns(off);

      // Time to first item, one search at a time (nothing else running), each next to one
      // bare run of the suppliers step's process: the floor under it.
      const suppliersArgv = ['/bin/echo', JSON.stringify({ suppliers })];
      const { a: firstOn, b: bareEcho } = await sideBySide(
        p.firstSamples,
        () => one(on, true),
        async () => (await baseline.command(suppliersArgv, JSON.stringify(request))).ms,
      );
      const firstOff: number[] = [];
      for (let i = 0; i < p.offFirstSamples; i++) firstOff.push(await one(off));
      const firstPhp: number[] = [];
      for (let i = 0; i < Math.min(p.firstSamples, 100); i++) firstPhp.push(await one(php));

      // Searches/s at a fixed concurrency, alternating rounds of the two servers.
      const round = (srv: AggregatorProcess, total: number) => async () => {
        const cpu = srv.cpuMs();
        const { ms } = await runWorkers(p.concurrency, total, () => one(srv));
        return { ms, perS: total / (ms / 1000), cpuPerSearch: (srv.cpuMs() - cpu) / total };
      };
      const { a: onRounds, b: offRounds } = await sideBySide(p.rounds, round(on, p.onSearches), round(off, p.offSearches));
      const totalS = (rounds: { ms: number }[]) => rounds.reduce((s, r) => s + r.ms, 0) / 1000;
      const onRate = (p.rounds * p.onSearches) / totalS(onRounds);
      const offRate = (p.rounds * p.offSearches) / totalS(offRounds);
      const ratio = onRate / offRate;
      const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

      const onSearched = p.firstSamples + p.rounds * p.onSearches;
      const hitCount = (await hits(on)) - hitsBefore;
      const missCount = (await misses(on)) + (await misses(php)) - missesBefore;
      const offRuns = (await itemsRuns(off)) - offRunsBefore;
      const offSearched = p.offFirstSamples + p.rounds * p.offSearches;
      // Paired per search (the suppliers frame and the first item of the same search).
      const afterSuppliers = firstOn.map((first, i) => first - (suppliersDone[i] ?? NaN));
      const p50 = percentile(firstOn, 50);
      const p95 = percentile(firstOn, 95);
      const sane = failed === 0 && missCount === 0 && hitCount === onSearched * p.suppliers;
      const problem = notes(
        failed > 0 && `${failed} searches failed`,
        missCount > 0 && `${missCount} cache misses after warm-up`,
        hitCount !== onSearched * p.suppliers && `${hitCount} hits, expected ${onSearched * p.suppliers}`,
      );
      const shape = `${p.suppliers} suppliers x ${p.sleepMs} ms`;
      return {
        rows: [
          {
            key: 'first_item_hit_p50',
            figure: `first item after the request on a hit, p50 of ${p.firstSamples} (${shape}, one search at a time)`,
            unit: 'ms',
            value: p50,
            target: '<= 5 ms',
            baseline: percentile(firstOff, 50),
            baselineLabel: 'cache off, p50',
            pass: sane && p50 <= 5,
            note: problem,
          },
          {
            key: 'first_item_hit_p95',
            figure: 'first item after the request on a hit, p95',
            unit: 'ms',
            value: p95,
            target: '<= 5 ms',
            baseline: percentile(firstOff, 95),
            baselineLabel: 'cache off, p95',
            pass: sane && p95 <= 5,
          },
          {
            key: 'first_item_after_suppliers_p50',
            figure: 'of which after the suppliers step ended (its SUCCESS frame to the first item), p50 / p95',
            unit: 'ms',
            value: percentile(afterSuppliers, 50),
            shown: `${fmt(percentile(afterSuppliers, 50))} / ${fmt(percentile(afterSuppliers, 95))} ms`,
            target: '-',
          },
          {
            key: 'bare_suppliers_step_p50',
            figure: "for comparison: the suppliers step's /bin/echo alone, spawned by a bare node process, p50 / p95",
            unit: 'ms',
            value: percentile(bareEcho, 50),
            shown: `${fmt(percentile(bareEcho, 50))} / ${fmt(percentile(bareEcho, 95))} ms`,
            target: '-',
          },
          {
            key: 'searches_per_s',
            figure: `searches/s, ${p.concurrency} at once (${shape}; cache on: every task a hit)`,
            unit: '/s',
            value: onRate,
            target: '>= 20 x baseline',
            baseline: offRate,
            baselineLabel: 'cache off',
            ratio,
            pass: sane && ratio >= 20,
            // Different amounts of work per side: a round's ratio is its rate over the other's.
            note: notes(problem, spread(onRounds.map((r, i) => r.perS / (offRounds[i]?.perS ?? NaN)))),
          },
          {
            key: 'cpu_ms_per_search',
            figure: 'server + launcher CPU per search (not the scripts)',
            unit: 'ms',
            value: mean(onRounds.map((r) => r.cpuPerSearch)),
            target: '-',
            baseline: mean(offRounds.map((r) => r.cpuPerSearch)),
            baselineLabel: 'cache off',
          },
          {
            key: 'first_item_hit_php_p50',
            figure: `for comparison: first item on a hit with the PHP suppliers script, p50 (p95 ${percentile(firstPhp, 95).toFixed(1)} ms)`,
            unit: 'ms',
            value: percentile(firstPhp, 50),
            target: '-',
          },
        ],
        facts: { failed, hits: hitCount, hitsExpected: onSearched * p.suppliers, misses: missCount, offRuns, offRunsExpected: offSearched * p.suppliers, p50, ratio },
      };
    } finally {
      await Promise.all([baseline.stop(), ...servers.map((s) => s.stop())]);
    }
  },
};
