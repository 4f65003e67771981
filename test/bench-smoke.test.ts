// Every benchmark scenario of bench/ in smoke mode (small numbers, a few seconds each): the
// real server (dist/main.js), real PHP, real sockets. It checks that each produced sane
// numbers and that the guarantees it relies on held (no failed search, none dropped, fair
// beats fifo); the speed targets themselves are for full runs by hand (npm run bench).
import t, { type Test } from 'tap';
import { SCENARIOS } from '../bench/scenarios.js';
import type { Result, Row } from '../bench/lib/types.js';
import { markedProcesses } from '../bench/lib/procs.js';
import { waitFor } from './helpers/harness.js';

// About 30 s on an idle 2-core machine; more room than the default when other suites share it.
t.setTimeout(180_000);

const byKey = (res: Result, key: string): Row => {
  const row = res.rows.find((r) => r.key === key);
  if (!row) throw new Error(`no row ${key}`);
  return row;
};
const num = (row: Row): number => row.value ?? NaN;

// What each scenario must show even at smoke size, beyond "every figure is a finite number".
const CHECKS: Record<string, (t: Test, res: Result) => void> = {
  '1': (t, res) => {
    t.equal(res.facts.failed, 0, 'no search failed');
    t.equal(res.facts.items, res.facts.itemsExpected, 'every item arrived');
    for (const runner of ['warm', 'spawn']) {
      t.ok(num(byKey(res, `scripts_per_s_${runner}`)) > 0 && (byKey(res, `scripts_per_s_${runner}`).baseline ?? 0) > 0, `${runner} and the bare loop ran scripts`);
      t.ok(num(byKey(res, `cpu_ms_per_script_${runner}`)) > 0, `${runner}: server CPU was measured`);
    }
    t.ok((res.facts.warmRestKb ?? 0) > 1024, 'the warm parent was found and its RSS read');
  },
  '2': (t, res) => {
    t.equal(res.facts.failed, 0, 'no search failed');
    t.ok((res.facts.samples ?? 0) > 0 && res.facts.samples === res.facts.bareSamples, 'as many samples on both sides');
    t.ok((byKey(res, 'overhead_p50').baseline ?? 0) > 0, 'the bare pair took time');
  },
  '3': (t, res) => {
    t.equal(res.facts.fairOk, 1, 'the small search succeeded (fair)');
    t.equal(res.facts.fifoOk, 1, 'the small search succeeded or hit the deadline (fifo)');
    const fair = num(byKey(res, 'fair_small_s'));
    const fifo = num(byKey(res, 'fifo_small_s'));
    t.ok(fair > 0 && fair < fifo, `fair (${fair} s) beats fifo (${fifo} s)`);
  },
  '4': (t, res) => {
    t.equal(res.facts.dropped, 0, 'no waiting search dropped');
    t.equal(res.facts.queued, res.facts.alive, 'each waiting search has its suppliers task pending');
    t.equal(res.facts.leftAfterClose, 0, 'closing the browsers freed every session');
    t.ok((res.facts.rssAfterMb ?? 0) > 10, 'server RSS was read');
  },
  '5': (t, res) => {
    t.equal(res.facts.bad, 0, 'every streaming run delivered every item');
    t.ok((res.facts.aggRate ?? 0) > 0 && (res.facts.baseRate ?? 0) > 0, 'both rates measured');
    t.ok(num(byKey(res, 'peak_rss_mb')) > 10, 'peak RSS was read');
  },
  '6': (t, res) => {
    t.equal(res.facts.failed, 0, 'no search failed');
    const first = res.facts.firstMs ?? NaN;
    t.ok(first >= 100, `first item (${first} ms) came after the quick script slept`);
    // No wall-clock margin: the slower suppliers' scripts wait for a file the client creates on
    // the first item frame, and say whether they saw it (bench/06-first-item.ts).
    t.equal(res.facts.streamedBeforeSlow, 1, 'the first item frame arrived while the slower suppliers were still running');
    t.ok((res.facts.aloneMs ?? 0) >= 100, 'the 0.1 s script alone took at least its sleep');
  },
  '7': (t, res) => {
    if (res.skipped) {
      t.pass(`skipped: ${res.skipped}`);
      return;
    }
    t.equal(res.facts.failed, 0, 'no aggregator request failed');
    t.equal(res.facts.wsdFailed, 0, 'no websocketd request failed');
    t.ok(num(byKey(res, 'requests_per_s')) > 0 && (byKey(res, 'requests_per_s').baseline ?? 0) > 0, 'both rates measured');
  },
  '8': (t, res) => {
    t.equal(res.facts.failed, 0, 'no search failed');
    const idle = num(byKey(res, 'idle_rss_mb'));
    t.ok(idle > 10 && idle < 1024, `idle RSS ${idle} MB is plausible`);
    t.ok((res.facts.bareMb ?? 0) > 5, 'bare node RSS was read');
  },
  '9': (t, res) => {
    t.equal(res.facts.failed, 0, 'no search failed (every one with all its items)');
    t.ok((res.facts.hits ?? 0) > 0 && res.facts.hits === res.facts.hitsExpected, `every timed task on the cached server was a hit (${res.facts.hits})`);
    t.equal(res.facts.misses, 0, 'no miss once the cache was filled');
    t.equal(res.facts.offRuns, res.facts.offRunsExpected, 'with the cache off every task ran its script');
    t.ok((res.facts.p50 ?? 0) > 0, 'the first item on a hit took measurable time');
    // The ratio itself is the full run's figure: in smoke mode a handful of searches on a shared
    // machine decide nothing, so it is only checked to be measured.
    t.ok(Number.isFinite(res.facts.ratio), `the searches/s were measured on both servers (x ${res.facts.ratio?.toFixed(1)})`);
  },
  '10': (t, res) => {
    t.equal(res.facts.dropped, 1, 'the sessions of the clients that read nothing ended and their connections were dropped');
    t.equal(res.facts.alive, 0, 'no session left');
    t.ok(Number.isFinite(res.facts.addedMb), 'the RSS was read');
  },
  '11': (t, res) => {
    t.equal(res.facts.ok, 1, 'the big search succeeded with every item');
    t.ok((res.facts.polls ?? 0) > 10, `/health was asked throughout (${res.facts.polls} times)`);
  },
};

for (const scenario of SCENARIOS) {
  t.test(`bench ${scenario.id}. ${scenario.title} (smoke)`, async (t) => {
    const res = await scenario.run('smoke');
    if (!res.skipped) t.ok(res.rows.length > 0, 'it produced figures');
    for (const row of res.rows) {
      if (row.value === null) t.ok(row.shown, `${row.key}: no number, but says why (${row.shown})`);
      else t.ok(Number.isFinite(row.value), `${row.key} = ${row.value} is a number`);
      if (row.baseline !== undefined && row.baseline !== null) t.ok(Number.isFinite(row.baseline), `${row.key} baseline is a number`);
    }
    const check = CHECKS[scenario.id];
    t.ok(check, 'the smoke test knows this scenario');
    check?.(t, res);
  });
}

t.test('the benchmarks left no process behind', async (t) => {
  // Servers, their launchers and scripts, baseline processes, websocketd: all carry the mark.
  t.ok(await waitFor(() => markedProcesses().length === 0, 5000), `none left: ${markedProcesses().join(' ')}`);
});
