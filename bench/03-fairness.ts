// 3. Fairness: pool 4, one search of 400 suppliers whose items take 1 s each is running, then a
// 3-supplier search (items 1 s too) starts. Timed: the small search, request to SESSION frame.
// Baseline: the same with aggregator.pool.order=fifo, where it waits behind the big one.
// Target: fair <= 3 s (one slot wait + its items' 1 s); fifo >= 100 s (400 x 1 s / 4).
import type WebSocket from 'ws';
import { connect, timeSearch } from './lib/client.js';
import { startAggregator } from './lib/procs.js';
import { fmt } from './lib/table.js';
import type { Mode, Result, Scenario } from './lib/types.js';

const PLAN = {
  full: { pool: 4, big: 400, small: 3, sleepMs: 1000, deadlineS: 200 },
  smoke: { pool: 2, big: 16, small: 3, sleepMs: 200, deadlineS: 20 },
};

interface Outcome {
  /** Small search, request to SESSION frame; null = past the deadline. */
  smallMs: number | null;
  smallOk: boolean;
  bigPending: number;
}

async function measure(order: 'fair' | 'fifo', p: (typeof PLAN)['full']): Promise<Outcome> {
  const srv = await startAggregator({
    'aggregator.pool.executor': p.pool,
    'aggregator.pool.order': order,
    'aggregator.timeout.session': p.deadlineS * 2,
    'aggregator.timeout.script': (p.sleepMs / 1000) * 5,
  });
  const sockets: WebSocket[] = [];
  try {
    const big = await connect(`${srv.wsBase}/ws`);
    sockets.push(big);
    let bigPending = 0;
    let itemsQueued: () => void = () => {};
    const queued = new Promise<void>((r) => (itemsQueued = r));
    const bigDone = timeSearch(big, { n: p.big, sleep: String(p.sleepMs), items: 1 }, {
      timeoutMs: p.deadlineS * 3000,
      onFrame: (data) => {
        if (data.includes('"_task":"ITEMS"') && data.includes('"_status":"PENDING"') && ++bigPending === p.big) itemsQueued();
      },
    });
    // The big search's items are queued and its first ones run for half a script time.
    await queued;
    await new Promise((r) => setTimeout(r, p.sleepMs / 2));
    const small = await connect(`${srv.wsBase}/ws`);
    sockets.push(small);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<null>((r) => (timer = setTimeout(() => r(null), p.deadlineS * 1000)));
    const res = await Promise.race([timeSearch(small, { n: p.small, sleep: String(p.sleepMs), items: 1 }, { timeoutMs: p.deadlineS * 2000 }), deadline]);
    clearTimeout(timer);
    big.close();
    await bigDone.catch(() => undefined);
    return { smallMs: res?.endMs ?? null, smallOk: !!res && res.sessionOk && res.items === p.small, bigPending };
  } finally {
    for (const ws of sockets) ws.terminate();
    await srv.stop();
  }
}

export const scenario: Scenario = {
  id: '3',
  title: 'fairness',
  async run(mode: Mode): Promise<Result> {
    const p = PLAN[mode];
    const fair = await measure('fair', p);
    const fifo = await measure('fifo', p);
    const fairS = fair.smallMs === null ? null : fair.smallMs / 1000;
    const fifoS = fifo.smallMs === null ? null : fifo.smallMs / 1000;
    // The targets scale with the plan: 3 script times (fair), big/pool script times (fifo).
    const fairLimit = (3 * p.sleepMs) / 1000;
    const fifoFloor = ((p.big / p.pool) * p.sleepMs) / 1000;
    const shape = `pool ${p.pool}, ${p.big} x ${fmt(p.sleepMs / 1000)} s running, then ${p.small} suppliers`;
    return {
      rows: [
        {
          key: 'fair_small_s',
          figure: `small search done, fair (${shape})`,
          unit: 's',
          value: fairS,
          shown: fairS === null ? `> ${p.deadlineS} s` : undefined,
          target: `<= ${fmt(fairLimit)} s`,
          baseline: fifoS,
          baselineLabel: 'fifo',
          ratio: fairS && fifoS ? fifoS / fairS : undefined,
          pass: fairS !== null && fair.smallOk && fairS <= fairLimit,
          note: fair.smallOk ? undefined : 'small search failed',
        },
        {
          key: 'fifo_small_s',
          figure: 'small search done, aggregator.pool.order=fifo',
          unit: 's',
          value: fifoS,
          shown: fifoS === null ? `> ${p.deadlineS} s` : undefined,
          target: `>= ${fmt(fifoFloor)} s`,
          pass: fifoS === null || fifoS >= fifoFloor * 0.98,
        },
      ],
      facts: {
        fairOk: Number(fair.smallOk),
        fifoOk: Number(fifo.smallOk || fifo.smallMs === null),
        bigPending: Math.min(fair.bigPending, fifo.bigPending),
      },
    };
  },
};
