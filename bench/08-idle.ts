// 8. Idle footprint: `node dist/main.js` RSS once /health answers and it settled, against a bare
// `node` process idling the same way. Target: <= 64 MB (the original v0.7's Java heap budget).
// For the reader: the same for an empty server on the same web stack, the server's helper
// process, and its RSS after it served some searches and went idle again.
import { spawn } from 'node:child_process';
import { search } from './lib/client.js';
import { runWorkers } from './lib/load.js';
import { ROOT, childPids, cleanEnv, procKb, sleep, startAggregator, stopChild } from './lib/procs.js';
import type { Mode, Result, Scenario } from './lib/types.js';

const PLAN = {
  full: { settleMs: 3000, searches: 200 },
  smoke: { settleMs: 700, searches: 10 },
};
const LIMIT_MB = 64;

// Two floors for comparison: node doing nothing, and the web stack the aggregator is built on
// (fastify 5 + @fastify/websocket, one route each) doing nothing.
const BARE = 'setInterval(() => {}, 1000)';
const STACK = `
import Fastify from 'fastify';
import websocket from '@fastify/websocket';
const app = Fastify();
await app.register(websocket);
app.get('/ws', { websocket: true }, () => {});
app.get('/health', async () => ({ status: 'ok' }));
await app.listen({ port: 0, host: '127.0.0.1' });
`;

async function idleKb(code: string, settleMs: number): Promise<number> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, env: cleanEnv(), stdio: 'ignore' });
  await sleep(settleMs + 500);
  const kb = child.pid === undefined ? 0 : procKb(child.pid, 'VmRSS');
  await stopChild(child);
  return kb;
}

/** RSS of the server's own child processes (the script launcher), in KB. */
function childrenKb(pid: number): { kb: number; count: number } {
  const pids = childPids(pid);
  return { kb: pids.reduce((kb, c) => kb + procKb(c, 'VmRSS'), 0), count: pids.length };
}

export const scenario: Scenario = {
  id: '8',
  title: 'idle footprint',
  async run(mode: Mode): Promise<Result> {
    const p = PLAN[mode];
    const srv = await startAggregator({});
    try {
      await sleep(p.settleMs);
      const idleMb = srv.rssKb() / 1024;
      const helpers = childrenKb(srv.pid);
      const [bareKb, stackKb] = await Promise.all([idleKb(BARE, p.settleMs), idleKb(STACK, p.settleMs)]);
      const bareMb = bareKb / 1024;
      const stackMb = stackKb / 1024;
      let failed = 0;
      await runWorkers(10, p.searches, async () => {
        const t = await search(`${srv.wsBase}/ws`, { n: 1, sleep: '0', items: 3 });
        if (!t.sessionOk) failed++;
      });
      await sleep(p.settleMs);
      const usedMb = srv.rssKb() / 1024;
      return {
        rows: [
          {
            key: 'idle_rss_mb',
            figure: 'RSS after start (node dist/main.js, /health answered)',
            unit: 'MB',
            value: idleMb,
            target: `<= ${LIMIT_MB} MB`,
            baseline: bareMb,
            baselineLabel: 'bare node idling',
            pass: idleMb <= LIMIT_MB,
          },
          {
            key: 'stack_rss_mb',
            figure: 'for comparison: an empty fastify + @fastify/websocket server',
            unit: 'MB',
            value: stackMb,
            target: '-',
          },
          {
            key: 'helpers_rss_mb',
            figure: `the server's own child processes (${helpers.count}: the script launcher)`,
            unit: 'MB',
            value: helpers.kb / 1024,
            target: '-',
          },
          {
            key: 'used_rss_mb',
            figure: `RSS idle again after ${p.searches} searches`,
            unit: 'MB',
            value: usedMb,
            target: '-',
            note: failed ? `${failed} searches failed` : undefined,
          },
        ],
        facts: { failed, idleMb, bareMb, stackMb, usedMb },
      };
    } finally {
      await srv.stop();
    }
  },
};
