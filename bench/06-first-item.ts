// 6. Time to first item: one search whose 3 suppliers answer after 0.1, 1 and 3 s, timed from
// the request to the first item frame, against the 0.1 s items script run alone by a bare Node
// spawn. Target: first item <= that + 30 ms (the suppliers step's PHP start included).
// Then one ordering check that needs no clock: the slower suppliers wait for a file this client
// creates only when its first item frame arrives, so they can only answer "gate opened" if that
// item was streamed while they were still running (a server that held items back until every
// script had answered would leave them waiting until they give up).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Baseline } from './lib/baseline.js';
import { search } from './lib/client.js';
import { sideBySide } from './lib/load.js';
import { startAggregator } from './lib/procs.js';
import { median } from './lib/table.js';
import type { Mode, Result, Scenario } from './lib/types.js';

/**
 * One search of `sleeps.length` suppliers where every supplier but the first waits for a gate
 * file (bench/scripts/items.php) that is created when the first item frame arrives here. True
 * when the search succeeded, the first item came from the ungated supplier, and every gated
 * supplier answered having seen the gate open: the first item reached this client before any
 * of the slower scripts answered.
 */
async function streamedBeforeSlowAnswered(url: string, sleeps: readonly number[]): Promise<boolean> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-bench6-'));
  const gate = path.join(dir, 'first-item-arrived');
  try {
    const t = await search(
      url,
      { n: sleeps.length, sleep: sleeps.join(','), items: 1, gate },
      {
        timeoutMs: 30_000,
        keepFrames: true,
        onFrame: (data) => {
          if (data.includes('"_status":"SENDING"') && !fs.existsSync(gate)) fs.writeFileSync(gate, '');
        },
      },
    );
    const items = (t.parsed ?? []).filter((f) => f._status === 'SENDING');
    return (
      t.sessionOk &&
      items.length === sleeps.length &&
      items[0]?.gate === undefined &&
      items.slice(1).every((item) => item.gate === 'opened')
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

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
    // gate '' = no gate: the timed searches sleep; only the ordering check waits for a file.
    const request = { n: p.sleeps.length, sleep: p.sleeps.join(','), items: 1, gate: '' };
    const srv = await startAggregator({
      'aggregator.timeout.script': 10,
      'aggregator.timeout.session': 30,
      'aggregator.fields.request': 'n,sleep,items,gate',
    });
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
      const ordered = await streamedBeforeSlowAnswered(url, p.sleeps);
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
            pass: failed === 0 && ordered && first <= base + 30 && first < slow,
            note: failed ? `${failed} searches failed` : ordered ? undefined : 'the first item was not streamed before the slower suppliers answered',
          },
          {
            key: 'bare_pair_ms',
            figure: `for comparison: suppliers script then the ${quick / 1000} s script, bare, back to back`,
            unit: 'ms',
            value: median(pairs),
            target: '-',
          },
        ],
        facts: { failed, firstMs: first, aloneMs: base, slowMs: slow, streamedBeforeSlow: ordered ? 1 : 0 },
      };
    } finally {
      await baseline.stop();
      await srv.stop();
    }
  },
};
