// The shared pool (docs/scripts.md, How a script is run) with fake async jobs the test finishes by
// hand: the limit, FIFO within a group, fair vs fifo order across groups, cancelling, and the exact
// counters.
import t from 'tap';
import { Pool } from '../src/pool.js';
import type { PoolOrder } from '../src/config-types.js';

// Jobs start in a microtask and a finished job frees its slot a few microtasks later;
// a macrotask turn lets all of that settle before the test looks.
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A pool plus jobs that start, record themselves, and end only when the test says so. */
function harness(size: number, order: PoolOrder) {
  const pool = new Pool(size, order);
  const started: string[] = [];
  const finishers = new Map<string, { ok: () => void; fail: (err: Error) => void }>();
  const results = new Map<string, boolean>();
  let concurrent = 0;
  let maxConcurrent = 0;
  const add = (group: string, name: string, signal?: AbortSignal) => {
    const p = pool.run(
      group,
      () =>
        new Promise<void>((resolve, reject) => {
          started.push(name);
          concurrent++;
          maxConcurrent = Math.max(maxConcurrent, concurrent);
          finishers.set(name, {
            ok: () => {
              concurrent--;
              resolve();
            },
            fail: (err) => {
              concurrent--;
              reject(err);
            },
          });
        }),
      signal,
    );
    void p.then((r) => results.set(name, r));
    return p;
  };
  const finish = async (name: string) => {
    const f = finishers.get(name);
    if (!f) throw new Error(`${name} has not started`);
    f.ok();
    await settle();
  };
  return { pool, started, results, add, finish, finishers, max: () => maxConcurrent };
}

t.test('the constructor refuses a pool without slots', async (t) => {
  t.throws(() => new Pool(0, 'fair'), RangeError);
  t.throws(() => new Pool(1.5, 'fair'), RangeError);
  t.equal(new Pool(3, 'fifo').size, 3);
});

t.test('the limit is never exceeded and every job runs (random timings, 3 groups)', async (t) => {
  for (const order of ['fair', 'fifo'] as const) {
    const pool = new Pool(3, order);
    let concurrent = 0;
    let max = 0;
    let ran = 0;
    const jobs: Promise<boolean>[] = [];
    for (let i = 0; i < 60; i++) {
      jobs.push(
        pool.run(`g${i % 3}`, async () => {
          concurrent++;
          max = Math.max(max, concurrent);
          t.ok(pool.busy <= 3, 'busy never over the size');
          await new Promise((r) => setTimeout(r, (i * 7) % 4));
          concurrent--;
          ran++;
        }),
      );
    }
    t.equal(pool.busy, 3, `${order}: the pool fills at once`);
    t.equal(pool.queued, 57, `${order}: the rest waits`);
    const results = await Promise.all(jobs);
    t.equal(max, 3, `${order}: at most 3 ran at once, and 3 did`);
    t.equal(ran, 60);
    t.ok(results.every((r) => r === true), 'every run resolves true');
    t.equal(pool.busy, 0);
    t.equal(pool.queued, 0);
  }
});

t.test('busy/queued counters are exact at each step; FIFO within a group', async (t) => {
  const h = harness(2, 'fair');
  t.same([h.pool.busy, h.pool.queued], [0, 0]);
  void h.add('A', 'a1');
  t.same([h.pool.busy, h.pool.queued], [1, 0], 'a1 takes a slot synchronously');
  void h.add('A', 'a2');
  void h.add('A', 'a3');
  void h.add('A', 'a4');
  t.same([h.pool.busy, h.pool.queued], [2, 2]);
  await settle();
  t.same(h.started, ['a1', 'a2']);
  await h.finish('a2');
  t.same(h.started, ['a1', 'a2', 'a3'], 'the group goes on in queue order');
  t.same([h.pool.busy, h.pool.queued], [2, 1]);
  t.equal(h.results.get('a2'), true, 'a finished job resolves true');
  await h.finish('a1');
  t.same([h.pool.busy, h.pool.queued], [2, 0]);
  await h.finish('a3');
  t.same([h.pool.busy, h.pool.queued], [1, 0]);
  await h.finish('a4');
  t.same([h.pool.busy, h.pool.queued], [0, 0]);
  t.same(h.started, ['a1', 'a2', 'a3', 'a4']);
  t.equal(h.max(), 2);
});

// Same workload for both orders: A queues 4 jobs, then B queues 2, pool of 2.
async function bigThenSmall(order: PoolOrder) {
  const h = harness(2, order);
  for (const n of ['a1', 'a2', 'a3', 'a4']) void h.add('A', n);
  for (const n of ['b1', 'b2']) void h.add('B', n);
  await settle();
  await h.finish('a1');
  await h.finish('a2');
  await h.finish(h.started[2]!);
  await h.finish(h.started[3]!);
  await h.finish(h.started[4]!);
  await h.finish(h.started[5]!);
  return h.started;
}

t.test('fair: a freed slot goes to the waiting group with the fewest running', async (t) => {
  const order = await bigThenSmall('fair');
  // a1 ends: A runs 1 (a2), B runs 0 → b1. a2 ends: A 0, B 1 → a3. Then ties by oldest head.
  t.same(order, ['a1', 'a2', 'b1', 'a3', 'b2', 'a4']);
});

t.test('fifo: the same workload runs in one global queue order', async (t) => {
  const order = await bigThenSmall('fifo');
  t.same(order, ['a1', 'a2', 'a3', 'a4', 'b1', 'b2']);
});

t.test('fair: a small search gets the next free slots while a big one waits', async (t) => {
  const h = harness(3, 'fair');
  for (let i = 1; i <= 10; i++) void h.add('big', `big${i}`);
  void h.add('small', 's1');
  void h.add('small', 's2');
  await settle();
  t.same(h.started, ['big1', 'big2', 'big3']);
  await h.finish('big1');
  t.same(h.started.at(-1), 's1', 'the first free slot goes to the small search (0 running)');
  await h.finish('big2');
  t.same(h.started.at(-1), 'big4', 'running 1 vs 1: the older head (big4) wins the tie');
  await h.finish('s1');
  t.same(h.started.at(-1), 's2', 'small runs 0 again, big runs 2: small gets the slot');
  t.same([h.pool.busy, h.pool.queued], [3, 6]);
});

t.test('fair, tie on running: the group whose oldest queued job waited longest wins', async (t) => {
  const h = harness(1, 'fair');
  void h.add('Z', 'blocker');
  // A enters the waiting set first, but its first job is cancelled, so its head (a2)
  // is younger than B's head (b1): the tie must go to B, not to set order.
  const cancelA = new AbortController();
  void h.add('A', 'a0', cancelA.signal);
  void h.add('B', 'b1');
  void h.add('A', 'a2');
  cancelA.abort();
  await settle();
  t.same([h.pool.busy, h.pool.queued], [1, 2]);
  await h.finish('blocker');
  t.same(h.started, ['blocker', 'b1']);
  await h.finish('b1');
  t.same(h.started, ['blocker', 'b1', 'a2']);
  t.equal(h.results.get('a0'), false);
});

t.test('fair, tie with running jobs: equal running counts go by the oldest head', async (t) => {
  const h = harness(3, 'fair');
  void h.add('A', 'a1');
  void h.add('B', 'b1');
  void h.add('C', 'c1');
  void h.add('B', 'b2'); // oldest waiting head
  void h.add('A', 'a2');
  await settle();
  await h.finish('c1'); // A and B both run 1: B's head b2 is older than A's a2
  t.same(h.started, ['a1', 'b1', 'c1', 'b2']);
  await h.finish('b1'); // now A runs 1, B runs 1 (b2): only A waits
  t.same(h.started.at(-1), 'a2');
});

t.test('cancel while queued: removed, resolves false, counters updated, never runs', async (t) => {
  const h = harness(1, 'fair');
  void h.add('A', 'a1');
  const ac = new AbortController();
  const cancelled = h.add('A', 'a2', ac.signal);
  void h.add('A', 'a3');
  t.same([h.pool.busy, h.pool.queued], [1, 2]);
  ac.abort();
  t.equal(await cancelled, false, 'resolves false');
  t.same([h.pool.busy, h.pool.queued], [1, 1], 'queued drops at once');
  await settle();
  await h.finish('a1');
  t.same(h.started, ['a1', 'a3'], 'a2 never ran, a3 took its place');
  await h.finish('a3');
  t.same([h.pool.busy, h.pool.queued], [0, 0]);
});

t.test('an already aborted signal never queues', async (t) => {
  const pool = new Pool(1, 'fair');
  let ran = false;
  const r = await pool.run('A', async () => void (ran = true), AbortSignal.abort());
  t.equal(r, false);
  t.equal(ran, false);
  t.same([pool.busy, pool.queued], [0, 0]);
});

t.test('abort after start does not remove the job', async (t) => {
  const h = harness(1, 'fair');
  const ac = new AbortController();
  const p = h.add('A', 'a1', ac.signal);
  void h.add('A', 'a2');
  await settle();
  ac.abort();
  await settle();
  t.same([h.pool.busy, h.pool.queued], [1, 1], 'still running, slot still held');
  t.equal(h.results.has('a1'), false, 'not resolved by the abort');
  await h.finish('a1');
  t.equal(await p, true, 'resolves true once the job itself ends');
  t.same(h.started, ['a1', 'a2']);
});

t.test('a throwing job releases its slot', async (t) => {
  const h = harness(1, 'fair');
  const p = h.add('A', 'a1');
  void h.add('A', 'a2');
  await settle();
  h.finishers.get('a1')!.fail(new Error('boom'));
  t.equal(await p, true, 'the job ran; its error is its own business');
  await settle();
  t.same(h.started, ['a1', 'a2']);
  t.same([h.pool.busy, h.pool.queued], [1, 0]);

  // A synchronous throw, too.
  const pool = new Pool(1, 'fifo');
  const sync = pool.run('A', () => {
    throw new Error('sync boom');
  });
  t.equal(await sync, true);
  await settle();
  t.same([pool.busy, pool.queued], [0, 0]);
  let next = false;
  await pool.run('B', async () => void (next = true));
  t.equal(next, true, 'the next job got the slot');
});

t.test('many cancelled heads are skipped and compacted without losing jobs', async (t) => {
  const h = harness(1, 'fair');
  void h.add('A', 'first');
  const acs: AbortController[] = [];
  for (let i = 0; i < 3000; i++) {
    const ac = new AbortController();
    acs.push(ac);
    void h.add('A', `c${i}`, ac.signal);
  }
  void h.add('A', 'last');
  for (const ac of acs) ac.abort();
  t.same([h.pool.busy, h.pool.queued], [1, 1]);
  await settle();
  await h.finish('first');
  t.same(h.started, ['first', 'last']);
});
