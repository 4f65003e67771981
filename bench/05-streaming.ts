// 5. Streaming: one items script returns 100,000 items; the rate at which their frames reach
// the client (first item frame to last) against a bare `ws` server (its own process) sending
// the very frames the aggregator sent. Target: >= 0.5 of the baseline's frames/s, and the
// server's peak RSS bounded (<= 256 MB: the script's whole answer is held once parsed,
// since an answer that fails validation sends no item: docs/protocol.md, Items step).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Baseline } from './lib/baseline.js';
import { search } from './lib/client.js';
import { sideBySide } from './lib/load.js';
import { startAggregator } from './lib/procs.js';
import type { Mode, Result, Scenario } from './lib/types.js';

const PLAN = {
  full: { items: 100_000, rounds: 4 },
  smoke: { items: 10_000, rounds: 1 },
};
const PEAK_LIMIT_MB = 256;

export const scenario: Scenario = {
  id: '5',
  title: 'streaming',
  async run(mode: Mode): Promise<Result> {
    const p = PLAN[mode];
    const request = { n: 1, sleep: '0', items: p.items };
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-bench-stream-'));
    const srv = await startAggregator({ 'aggregator.timeout.script': 60, 'aggregator.timeout.session': 120 });
    try {
      const url = `${srv.wsBase}/ws`;
      const idleMb = srv.rssKb() / 1024;
      // The first search is the warm-up and records the frames the baseline will replay.
      const frames: string[] = [];
      const first = await search(url, request, { onFrame: (d) => frames.push(d.toString('utf8')), timeoutMs: 120_000 });
      if (!first.sessionOk || first.items !== p.items) throw new Error(`streaming search failed: ${first.items} items, close ${first.closeCode}`);
      const file = path.join(tmp, 'frames.txt');
      fs.writeFileSync(file, `${frames.join('\n')}\n`);
      frames.length = 0;
      const baseline = Baseline.start();
      try {
        const baseUrl = `ws://127.0.0.1:${await baseline.serveFrames(file)}/`;
        let bad = 0;
        const window = (t: Awaited<ReturnType<typeof search>>) => {
          if (t.items !== p.items || t.firstItemMs === null || t.lastItemMs === null) {
            bad++;
            return { ms: NaN, total: t.closeMs };
          }
          return { ms: t.lastItemMs - t.firstItemMs, total: t.closeMs };
        };
        const { a, b } = await sideBySide(
          p.rounds,
          async () => window(await search(url, request, { timeoutMs: 120_000 })),
          async () => window(await search(baseUrl, request, { timeoutMs: 120_000 })),
        );
        const php = await baseline.php('items', { sleep: 0, items: p.items });
        const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
        const aggRate = (p.items * p.rounds) / (sum(a.map((x) => x.ms)) / 1000);
        const baseRate = (p.items * p.rounds) / (sum(b.map((x) => x.ms)) / 1000);
        const peakMb = srv.peakKb() / 1024;
        const endToEnd = sum(a.map((x) => x.total)) / p.rounds;
        return {
          rows: [
            {
              key: 'frames_per_s',
              figure: `item frames/s, one script of ${p.items} items`,
              unit: '/s',
              value: aggRate,
              target: '>= 0.5 x baseline',
              baseline: baseRate,
              baselineLabel: 'bare ws server',
              ratio: aggRate / baseRate,
              pass: bad === 0 && aggRate / baseRate >= 0.5,
              note: bad ? `${bad} runs incomplete` : undefined,
            },
            {
              key: 'peak_rss_mb',
              figure: `server peak RSS (VmHWM) streaming ${p.items} items`,
              unit: 'MB',
              value: peakMb,
              target: `<= ${PEAK_LIMIT_MB} MB`,
              baseline: idleMb,
              baselineLabel: 'idle',
              pass: peakMb <= PEAK_LIMIT_MB,
            },
            {
              key: 'launcher_peak_rss_mb',
              figure: `script launcher peak RSS (it relays the script's stdout as it comes)`,
              unit: 'MB',
              value: srv.launcherPeakKb() / 1024,
              target: '-',
            },
            {
              key: 'end_to_end_ms',
              figure: `whole search, request to close (the items script alone: ${php.ms.toFixed(0)} ms)`,
              unit: 'ms',
              value: endToEnd,
              target: '-',
            },
          ],
          facts: { bad, aggRate, baseRate, phpMs: php.ms, stdoutBytes: php.bytes },
        };
      } finally {
        await baseline.stop();
      }
    } finally {
      await srv.stop();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  },
};
