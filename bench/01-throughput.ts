// 1. Script throughput: many searches of trivial PHP scripts through a pool of 20, with each
// runner (aggregator.script.runner: warm, the default, and spawn), against a bare Node loop
// spawning the same scripts (suppliers, then each supplier's items) with the same concurrency,
// rounds alternating between the three. Targets: warm >= 4x the bare loop's scripts/s; spawn
// >= 0.90x (a cold PHP start per script is then the limit). Also: CPU per script of the server
// and its helpers (launcher, warm PHP parent), and the warm parent's RSS at rest and under load.
import { Baseline } from './lib/baseline.js';
import { search } from './lib/client.js';
import { runWorkers } from './lib/load.js';
import { type AggregatorProcess, procKb, sleep, startAggregator } from './lib/procs.js';
import { notes, spread } from './lib/table.js';
import type { Mode, Result, Row, Scenario } from './lib/types.js';

const PLAN = {
  full: { pool: 20, concurrent: 10, suppliers: 10, searches: 30, rounds: 6 },
  smoke: { pool: 20, concurrent: 4, suppliers: 5, searches: 6, rounds: 1 },
};
const RUNNERS = [
  { runner: 'warm', target: 4 },
  { runner: 'spawn', target: 0.9 },
] as const;

export const scenario: Scenario = {
  id: '1',
  title: 'script throughput',
  async run(mode: Mode): Promise<Result> {
    const p = PLAN[mode];
    const request = { n: p.suppliers, sleep: '0', items: 1 };
    const scriptsPerSearch = 1 + p.suppliers;
    const servers: AggregatorProcess[] = [];
    const baseline = Baseline.start();
    try {
      for (const { runner } of RUNNERS) {
        servers.push(
          await startAggregator({
            'aggregator.pool.executor': p.pool,
            'aggregator.timeout.session': 300,
            'aggregator.timeout.script': 60,
            'aggregator.script.runner': runner,
          }),
        );
      }
      let failed = 0;
      let items = 0;
      let warmPeakKb = 0;
      // Per server: round times and CPU spent (server + helpers), to show the per-script cost
      // apart from the machine's noise.
      const ms = servers.map(() => [] as number[]);
      const cpu = servers.map(() => 0);
      const bareMs: number[] = [];
      let bareCpu = 0;
      const aggregator = async (i: number) => {
        const srv = servers[i] as AggregatorProcess;
        const before = srv.cpuMs();
        // The parents are found once (a /proc scan); their RSS is then read alone, cheaply.
        const parents = srv.warmParents();
        const parentsKb = () => parents.reduce((kb, pid) => kb + procKb(pid, 'VmRSS'), 0);
        const sampler = setInterval(() => (warmPeakKb = Math.max(warmPeakKb, parentsKb())), 100);
        const { results, ms: took } = await runWorkers(p.concurrent, p.searches, () => search(`${srv.wsBase}/ws`, request));
        clearInterval(sampler);
        cpu[i] = (cpu[i] ?? 0) + srv.cpuMs() - before;
        for (const r of results) {
          if (!r.sessionOk || r.closeCode !== 1000) failed++;
          items += r.items;
        }
        return took;
      };
      const bare = async () => {
        const before = baseline.cpuMs();
        const { ms: took } = await baseline.searches({ request, pool: p.pool, concurrency: p.concurrent, total: p.searches });
        bareCpu += baseline.cpuMs() - before;
        return took;
      };
      // Warm-up (PHP's file cache, the warm parents, the servers' lazy paths), not counted.
      await bare();
      for (let i = 0; i < servers.length; i++) await aggregator(i);
      await sleep(500);
      const warmRestKb = (servers[0]?.warmParents() ?? []).reduce((kb, pid) => kb + procKb(pid, 'VmRSS'), 0);
      failed = 0;
      items = 0;
      warmPeakKb = 0;
      cpu.fill(0);
      for (let round = 0; round < p.rounds; round++) {
        bareMs.push(await bare());
        for (let i = 0; i < servers.length; i++) ms[i]?.push(await aggregator(i));
      }
      const scripts = p.rounds * p.searches * scriptsPerSearch;
      const rate = (xs: number[]) => scripts / (xs.reduce((x, y) => x + y, 0) / 1000);
      const bareRate = rate(bareMs);
      const rows: Row[] = RUNNERS.flatMap(({ runner, target }, i): Row[] => {
        const r = rate(ms[i] ?? []);
        const ratio = r / bareRate;
        return [
          {
            key: `scripts_per_s_${runner}`,
            figure: `scripts/s, runner ${runner}, pool ${p.pool}, ${p.concurrent} searches x ${p.suppliers} suppliers at once`,
            unit: '/s',
            value: r,
            target: `>= ${target.toFixed(2)} x baseline`,
            baseline: bareRate,
            baselineLabel: 'bare spawn loop',
            ratio,
            pass: ratio >= target && failed === 0,
            // Same work each round, so a round's ratio is the bare loop's time over ours.
            note: notes(failed > 0 && `${failed} searches failed`, spread((ms[i] ?? []).map((t, k) => (bareMs[k] ?? NaN) / t))),
          },
          {
            key: `cpu_ms_per_script_${runner}`,
            figure: `runner ${runner}: server + ${runner === 'warm' ? 'launcher + warm parent' : 'launcher'} CPU per script (user + system)`,
            unit: 'ms',
            value: (cpu[i] ?? 0) / scripts,
            target: '-',
            baseline: bareCpu / scripts,
            baselineLabel: 'bare loop process',
            ratio: (cpu[i] ?? 0) / bareCpu,
          },
        ];
      });
      rows.push({
        key: 'warm_parent_rss_mb',
        figure: 'warm PHP parent RSS at rest / at the peak of the warm rounds',
        unit: 'MB',
        value: warmPeakKb / 1024,
        shown: `${(warmRestKb / 1024).toFixed(1)} / ${(warmPeakKb / 1024).toFixed(1)} MB`,
        target: '-',
      });
      return {
        rows,
        facts: { failed, items, itemsExpected: p.rounds * p.searches * p.suppliers * servers.length, scripts, warmRestKb, warmPeakKb },
      };
    } finally {
      await baseline.stop();
      for (const srv of servers) await srv.stop();
    }
  },
};
