// 4. Sessions held: a pool of 1 is taken by a long script, then 10,000 searches are opened and
// each waits with its suppliers task queued. None may be dropped; the server's RSS (its own
// process) must stay <= 400 MB; KB per session = RSS growth / sessions.
import type WebSocket from 'ws';
import { connect, timeSearch } from './lib/client.js';
import { runWorkers } from './lib/load.js';
import { sleep, startAggregator } from './lib/procs.js';
import type { Mode, Result, Scenario } from './lib/types.js';

const PLAN = {
  full: { sessions: 10000, connectAtOnce: 200, holdMs: 5000 },
  smoke: { sessions: 300, connectAtOnce: 100, holdMs: 500 },
};

/** Opens a search and resolves once its first frame (the suppliers task's PENDING) arrived. */
async function openWaiting(url: string, onClose: () => void): Promise<WebSocket> {
  const ws = await connect(url);
  await new Promise<void>((resolve, reject) => {
    ws.once('message', (data: Buffer) => {
      if (data.includes('"_status":"PENDING"')) resolve();
      else reject(new Error(`unexpected first frame: ${data.toString('utf8').slice(0, 200)}`));
    });
    ws.once('close', () => reject(new Error('closed before its first frame')));
    ws.send(JSON.stringify({ n: 1, sleep: '0', items: 1 }));
  });
  ws.once('close', onClose);
  return ws;
}

export const scenario: Scenario = {
  id: '4',
  title: 'sessions held',
  async run(mode: Mode): Promise<Result> {
    const p = PLAN[mode];
    const srv = await startAggregator({
      'aggregator.pool.executor': 1,
      'aggregator.limit.sessions': p.sessions * 2,
      'aggregator.timeout.session': 600,
      'aggregator.timeout.script': 600,
    });
    const sockets: WebSocket[] = [];
    try {
      const url = `${srv.wsBase}/ws`;
      // The blocker: its items script sleeps until we close it, holding the only slot.
      const blocker = await connect(url);
      sockets.push(blocker);
      const blockerDone = timeSearch(blocker, { n: 1, sleep: '600000', items: 1 }, { timeoutMs: 900_000 }).catch(() => undefined);
      for (let i = 0; i < 200; i++) {
        const s = await srv.stats();
        if (s.poolBusy === 1 && s.taskPending === 1 && s.taskRunning === 1) break;
        await sleep(50);
      }
      await sleep(300);
      const rssBefore = srv.rssKb();

      let closedEarly = 0;
      const started = performance.now();
      await runWorkers(p.connectAtOnce, p.sessions, async () => {
        sockets.push(await openWaiting(url, () => closedEarly++));
      });
      const openMs = performance.now() - started;
      await sleep(p.holdMs);
      const stats = await srv.stats();
      const rssAfter = srv.rssKb();
      const alive = Number(stats.sessionAlive) - 1;
      const queued = Number(stats.taskPending) - 1;
      // Dropped: a socket the server closed, or a session it no longer counts as alive.
      const dropped = Math.max(closedEarly, p.sessions - alive);

      // Closing every browser must free every session.
      const closeStart = performance.now();
      for (const ws of sockets) if (ws !== blocker) ws.close();
      let left = -1;
      for (let i = 0; i < 600; i++) {
        left = Number((await srv.stats()).sessionAlive) - 1;
        if (left <= 0) break;
        await sleep(50);
      }
      const closeMs = performance.now() - closeStart;
      blocker.close();
      await blockerDone;

      const rssMb = rssAfter / 1024;
      const kbPerSession = (rssAfter - rssBefore) / p.sessions;
      return {
        rows: [
          {
            key: 'dropped',
            figure: `searches dropped of ${p.sessions} waiting (opened in ${(openMs / 1000).toFixed(1)} s, held ${p.holdMs / 1000} s)`,
            unit: '',
            value: dropped,
            target: '0',
            pass: dropped === 0,
          },
          {
            key: 'rss_mb',
            figure: `server RSS with ${p.sessions} searches waiting`,
            unit: 'MB',
            value: rssMb,
            target: '<= 400 MB',
            baseline: rssBefore / 1024,
            baselineLabel: 'before they opened',
            pass: rssMb <= 400,
          },
          { key: 'kb_per_session', figure: 'KB per waiting search (RSS growth / searches)', unit: 'KB', value: kbPerSession, target: '-' },
          {
            key: 'close_s',
            figure: `all ${p.sessions} closed by their browsers: sessions freed in`,
            unit: 's',
            value: closeMs / 1000,
            target: '-',
            note: left > 0 ? `${left} still alive` : undefined,
          },
        ],
        facts: { dropped, alive, queued, leftAfterClose: left, kbPerSession, rssAfterMb: rssMb },
      };
    } finally {
      for (const ws of sockets) ws.terminate();
      await srv.stop();
    }
  },
};
