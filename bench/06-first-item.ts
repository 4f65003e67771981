// 6. Time to first item: one search whose 3 suppliers answer after 0.1, 1 and 3 s, timed from
// the request to the first item frame, against the 0.1 s items script run alone by a bare Node
// spawn. Target: first item <= that + 30 ms (the suppliers step's PHP start included).
import { Baseline } from './lib/baseline.js';
import { search } from './lib/client.js';
import { sideBySide } from './lib/load.js';
import { startAggregator } from './lib/procs.js';
import { median } from './lib/table.js';
import type { Mode, Result, Scenario } from './lib/types.js';

const PLAN = {
  full: { sleeps: [100, 1000, 3000], rounds: 7 },
  smoke: { sleeps: [100, 300, 600], rounds: 2 },
};

export const scenario: Scenario = {
  id: '6',
  title: 'time to first item',
  async run(mode: Mode): Promise<Result> {
    const p = PLAN[mode];
    const quick = p.sleeps[0] ?? 100;
    const slow = p.sleeps[1] ?? 1000;
    const request = { n: p.sleeps.length, sleep: p.sleeps.join(','), items: 1 };
    const srv = await startAggregator({ 'aggregator.timeout.script': 10, 'aggregator.timeout.session': 30 });
    const baseline = Baseline.start();
    try {
      const url = `${srv.wsBase}/ws`;
      let failed = 0;
      const agg = async () => {
        const t = await search(url, request, { timeoutMs: 30_000 });
        if (!t.sessionOk || t.items !== p.sleeps.length || t.firstItemMs === null) failed++;
        return t.firstItemMs ?? NaN;
      };
      const alone = async () => (await baseline.php('items', { sleep: quick, items: 1 })).ms;
      await agg();
      await alone();
      failed = 0;
      const { a, b } = await sideBySide(p.rounds, agg, alone);
      // For the reader: what the suppliers step adds when done by hand (bare spawn, back to back).
      const pairs: number[] = [];
      for (let i = 0; i < p.rounds; i++) {
        const { searches } = await baseline.searches({ request: { ...request, n: 1 }, pool: 20, concurrency: 1, total: 1 });
        pairs.push(searches[0]?.firstItemMs ?? NaN);
      }
      const first = median(a);
      const base = median(b);
      return {
        rows: [
          {
            key: 'first_item_ms',
            figure: `first item, suppliers answering after ${p.sleeps.map((s) => s / 1000).join(' / ')} s (median of ${p.rounds})`,
            unit: 'ms',
            value: first,
            target: `<= baseline + 30 ms`,
            baseline: base,
            baselineLabel: `${quick / 1000} s script alone`,
            pass: failed === 0 && first <= base + 30 && first < slow,
            note: failed ? `${failed} searches failed` : undefined,
          },
          {
            key: 'bare_pair_ms',
            figure: `for comparison: suppliers script then the ${quick / 1000} s script, bare, back to back`,
            unit: 'ms',
            value: median(pairs),
            target: '-',
          },
        ],
        facts: { failed, firstMs: first, aloneMs: base, slowMs: slow },
      };
    } finally {
      await baseline.stop();
      await srv.stop();
    }
  },
};
