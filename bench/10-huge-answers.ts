// 10. Huge answers to browsers that never read: three clients at once, each searching one
// supplier whose items script answers 100,000 items, none reading a byte. What the server and
// its helper processes (the script launcher, warm PHP parents) add to their RSS at the peak,
// against their RSS after one such search to a reading client; and that the three sessions end
// (they stop at the session timeout and their connections are dropped). Target: < 150 MB added.
import fs from 'node:fs';
import http from 'node:http';
import { clientFrame, rawUpgrade } from '../test/helpers/raw-ws.js';
import { search } from './lib/client.js';
import { sleep, startAggregator, withHelpersKb } from './lib/procs.js';
import type { Mode, Result, Scenario } from './lib/types.js';

// Smoke mode too: a smaller answer fits in the kernel's socket buffers, and nothing is left to drop.
const PLAN = {
  full: { items: 100_000, clients: 3 },
  smoke: { items: 100_000, clients: 3 },
};
const TARGET_MB = 150;
const SESSION_S = 5;

/** /stats on a connection of its own, closed after (a kept-alive one would count as a socket of the server). */
function statsOnce(base: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    http
      .get(`${base}/stats`, { agent: false, headers: { connection: 'close' } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('utf8')));
        res.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
      })
      .on('error', reject);
  });
}

/** Open sockets of a process: a paused client never sees the server drop its connection, the server's descriptors do. */
function socketCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
      } catch {
        return false;
      }
    }).length;
  } catch {
    return -1;
  }
}

export const scenario: Scenario = {
  id: '10',
  title: 'huge answers, browsers not reading',
  async run(mode: Mode): Promise<Result> {
    const p = PLAN[mode];
    const request = { n: 1, sleep: '0', items: p.items };
    const srv = await startAggregator({ 'aggregator.timeout.script': 60, 'aggregator.timeout.session': SESSION_S });
    try {
      // One reading client first: the server's code is warm and its heap has held such an answer once.
      const warm = await search(`${srv.wsBase}/ws`, request, { timeoutMs: 120_000 });
      if (!warm.sessionOk || warm.items !== p.items) throw new Error(`warm-up search failed: ${warm.items} items`);
      await sleep(1000);
      const baseKb = withHelpersKb(srv.pid);
      const baseSockets = socketCount(srv.pid);

      let peakKb = baseKb;
      const sampler = setInterval(() => (peakKb = Math.max(peakKb, withHelpersKb(srv.pid))), 20);
      const t0 = performance.now();
      const raws = await Promise.all(Array.from({ length: p.clients }, () => rawUpgrade(srv.port)));
      for (const raw of raws) {
        raw.socket.on('error', () => {});
        raw.socket.pause(); // reads nothing from now on
        raw.socket.write(clientFrame(1, JSON.stringify(request)));
      }
      // Every session ends, and the server drops the connections by the session deadline.
      let dropped = false;
      const deadline = t0 + (SESSION_S + 20) * 1000;
      while (performance.now() < deadline) {
        const stats = await statsOnce(srv.httpBase);
        if (Number(stats.sessionAlive) === 0 && socketCount(srv.pid) <= baseSockets) {
          dropped = true;
          break;
        }
        await sleep(50);
      }
      const endMs = performance.now() - t0;
      await sleep(200);
      clearInterval(sampler);
      peakKb = Math.max(peakKb, withHelpersKb(srv.pid));
      const stats = await srv.stats();
      for (const raw of raws) raw.socket.destroy();
      const addedMb = (peakKb - baseKb) / 1024;
      const alive = Number(stats.sessionAlive);
      return {
        rows: [
          {
            key: 'added_mb',
            figure: `RSS added, server + helpers, ${p.clients} clients not reading ${p.items.toLocaleString('en')} items each`,
            unit: 'MB',
            value: addedMb,
            target: `< ${TARGET_MB} MB`,
            baseline: baseKb / 1024,
            baselineLabel: 'server + helpers after one such search',
            pass: addedMb < TARGET_MB && dropped && alive === 0,
            note: dropped ? `sessions ended, connections dropped after ${(endMs / 1000).toFixed(1)} s (session timeout ${SESSION_S} s)` : 'connections NOT dropped',
          },
        ],
        facts: { addedMb, dropped: dropped ? 1 : 0, alive, endMs },
      };
    } finally {
      await srv.stop();
    }
  },
};
