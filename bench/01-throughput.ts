// 1. Script throughput: many searches of trivial PHP scripts through a pool of 20, against a
// bare Node loop spawning the same scripts (suppliers, then each supplier's items) with the
// same concurrency. Target: >= 0.90 of the bare loop's scripts/s.
import { Baseline } from './lib/baseline.js';
import { search } from './lib/client.js';
import { runWorkers, sideBySide } from './lib/load.js';
import { startAggregator } from './lib/procs.js';
import { notes, spread } from './lib/table.js';
import type { Mode, Result, Scenario } from './lib/types.js';

const PLAN = {
  full: { pool: 20, concurrent: 10, suppliers: 10, searches: 30, rounds: 6 },
  smoke: { pool: 20, concurrent: 4, suppliers: 5, searches: 6, rounds: 1 },
};

export const scenario: Scenario = {
  id: '1',
  title: 'script throughput',
  async run(mode: Mode): Promise<Result> {
    const p = PLAN[mode];
    const request = { n: p.suppliers, sleep: '0', items: 1 };
    const scriptsPerSearch = 1 + p.suppliers;
    const srv = await startAggregator({
      'aggregator.pool.executor': p.pool,
      'aggregator.timeout.session': 300,
      'aggregator.timeout.script': 60,
    });
    const baseline = Baseline.start();
    try {
      let failed = 0;
      let items = 0;
      // CPU the server (resp. the bare loop's process) spent, to show the per-script cost
      // apart from the machine's noise.
      let aggCpu = 0;
      let bareCpu = 0;
      const aggregator = async () => {
        const cpu = srv.cpuMs();
        const { results, ms } = await runWorkers(p.concurrent, p.searches, () => search(`${srv.wsBase}/ws`, request));
        aggCpu += srv.cpuMs() - cpu;
        for (const r of results) {
          if (!r.sessionOk || r.closeCode !== 1000) failed++;
          items += r.items;
        }
        return ms;
      };
      const bare = async () => {
        const cpu = baseline.cpuMs();
        const { ms } = await baseline.searches({ request, pool: p.pool, concurrency: p.concurrent, total: p.searches });
        bareCpu += baseline.cpuMs() - cpu;
        return ms;
      };
      // Warm-up (PHP's file cache, the server's lazy paths), not counted.
      await bare();
      await aggregator();
      failed = 0;
      items = 0;
      aggCpu = 0;
      bareCpu = 0;
      const { a, b } = await sideBySide(p.rounds, aggregator, bare);
      const scripts = p.rounds * p.searches * scriptsPerSearch;
      const aggRate = scripts / (a.reduce((x, y) => x + y, 0) / 1000);
      const bareRate = scripts / (b.reduce((x, y) => x + y, 0) / 1000);
      const ratio = aggRate / bareRate;
      return {
        rows: [
          {
            key: 'scripts_per_s',
            figure: `scripts/s, pool ${p.pool}, ${p.concurrent} searches x ${p.suppliers} suppliers at once`,
            unit: '/s',
            value: aggRate,
            target: '>= 0.90 x baseline',
            baseline: bareRate,
            baselineLabel: 'bare spawn loop',
            ratio,
            pass: ratio >= 0.9 && failed === 0,
            // Same work each round, so a round's ratio is the bare loop's time over ours.
            note: notes(failed > 0 && `${failed} searches failed`, spread(a.map((ms, i) => (b[i] ?? NaN) / ms))),
          },
          {
            key: 'cpu_ms_per_script',
            figure: 'server + launcher CPU per script (user + system)',
            unit: 'ms',
            value: aggCpu / scripts,
            target: '-',
            baseline: bareCpu / scripts,
            baselineLabel: 'bare loop process',
            ratio: aggCpu / bareCpu,
          },
        ],
        facts: { failed, items, itemsExpected: p.rounds * p.searches * p.suppliers, scripts },
      };
    } finally {
      await baseline.stop();
      await srv.stop();
    }
  },
};
