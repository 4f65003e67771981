// 7. Versus websocketd (Debian package): websocketd runs the PHP items script once per
// connection; the aggregator runs the same script once per search. Its suppliers step is a
// constant answered by /bin/echo (still a process in the pool, so every step of the protocol happens),
// because the comparison is one PHP script per request on both sides. Same clients (20 at once)
// and the same pool width (20). A request is timed from connect to close, because websocketd
// starts PHP on connect, before the request arrives.
// Target: >= 2x websocketd's completed requests/s (the items script runs warm here), with a
// lower p50 latency.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { connect, timeSearch } from './lib/client.js';
import { runWorkers, sideBySide } from './lib/load.js';
import { ITEMS_PHP, PHP, cleanEnv, freePort, sleep, startAggregator, stopChild } from './lib/procs.js';
import { notes, percentile, spread } from './lib/table.js';
import type { Mode, Result, Scenario } from './lib/types.js';

const WEBSOCKETD = '/usr/bin/websocketd';
const SETSID = '/usr/bin/setsid';
const PLAN = {
  full: { clients: 20, requests: 600, rounds: 2 },
  smoke: { clients: 5, requests: 20, rounds: 1 },
};
const SUPPLIER = { sleep: 0, items: 3 };

async function startWebsocketd(): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  // setsid gives each PHP its own session, as the aggregator's process groups do: with the
  // kernel's autogroup scheduling a session is a CPU share, so on a busy machine this keeps
  // the scheduler from favouring either side.
  const setsid = fs.existsSync(SETSID) ? [SETSID] : [];
  const child = spawn(WEBSOCKETD, ['--address=127.0.0.1', `--port=${port}`, '--loglevel=error', ...setsid, PHP, '-d', 'display_errors=stderr', ITEMS_PHP], {
    env: cleanEnv(),
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  for (let i = 0; i < 200; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      return { port, child };
    } catch {
      await sleep(50);
    }
  }
  await stopChild(child);
  throw new Error('websocketd did not start');
}

interface Round {
  ms: number;
  latencies: number[];
  failed: number;
}

async function load(url: string, request: unknown, clients: number, requests: number, ok: (items: number, frames: number) => boolean): Promise<Round> {
  const latencies: number[] = [];
  let failed = 0;
  const { ms } = await runWorkers(clients, requests, async () => {
    const t0 = performance.now();
    const t = await timeSearch(await connect(url), request, { timeoutMs: 30_000 });
    if (ok(t.items, t.frames)) latencies.push(performance.now() - t0);
    else failed++;
  });
  return { ms, latencies, failed };
}

export const scenario: Scenario = {
  id: '7',
  title: 'versus websocketd',
  async run(mode: Mode): Promise<Result> {
    if (!fs.existsSync(WEBSOCKETD)) return { rows: [], facts: {}, skipped: 'apt-get install websocketd' };
    const p = PLAN[mode];
    const srv = await startAggregator({
      'aggregator.pool.executor': 20,
      'aggregator.script.suppliers': `/bin/echo '${JSON.stringify({ suppliers: [SUPPLIER] })}'`,
    });
    let wsd: { port: number; child: ChildProcess } | undefined;
    try {
      wsd = await startWebsocketd();
      const aggUrl = `${srv.wsBase}/ws`;
      const wsdUrl = `ws://127.0.0.1:${wsd.port}/`;
      const agg = () => load(aggUrl, { n: 1, sleep: '0', items: 3 }, p.clients, p.requests, (items) => items === SUPPLIER.items);
      // websocketd sends the script's one line of output as one frame.
      const bare = () => load(wsdUrl, SUPPLIER, p.clients, p.requests, (_items, frames) => frames === 1);
      await agg();
      await bare();
      const { a, b } = await sideBySide(p.rounds, agg, bare);
      const rate = (rs: Round[]) => rs.reduce((n, r) => n + r.latencies.length, 0) / (rs.reduce((n, r) => n + r.ms, 0) / 1000);
      const p50 = (rs: Round[]) => percentile(rs.flatMap((r) => r.latencies), 50);
      const failed = a.reduce((n, r) => n + r.failed, 0);
      const wsdFailed = b.reduce((n, r) => n + r.failed, 0);
      const aRate = rate(a);
      const bRate = rate(b);
      return {
        rows: [
          {
            key: 'requests_per_s',
            figure: `completed requests/s, ${p.clients} clients, one PHP items script each`,
            unit: '/s',
            value: aRate,
            target: '>= 2 x websocketd',
            baseline: bRate,
            baselineLabel: 'websocketd',
            ratio: aRate / bRate,
            pass: failed === 0 && aRate / bRate >= 2,
            note: notes(
              (failed > 0 || wsdFailed > 0) && `${failed} failed, websocketd ${wsdFailed} failed`,
              spread(a.map((r, i) => rate([r]) / rate(b[i] ? [b[i]] : []))),
            ),
          },
          {
            key: 'p50_ms',
            figure: 'p50 latency, connect to close',
            unit: 'ms',
            value: p50(a),
            target: '< websocketd',
            baseline: p50(b),
            baselineLabel: 'websocketd',
            ratio: p50(a) / p50(b),
            pass: p50(a) < p50(b),
          },
        ],
        facts: { failed, wsdFailed, completed: a.reduce((n, r) => n + r.latencies.length, 0) },
      };
    } finally {
      if (wsd) await stopChild(wsd.child);
      await srv.stop();
    }
  },
};
