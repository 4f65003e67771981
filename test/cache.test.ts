// The items cache end to end (docs/cache.md; docs/protocol.md, Items cache): real servers, real
// WebSockets, real php and, for the shared cache, a real redis-server. What is asserted is the
// number of real script runs, counted by the scripts themselves (test/fixtures/items-counted.php
// appends a line per run and stamps its items with the run's number) or, for the demo scripts,
// by /metrics (aggregator_script_run_seconds_count{task="ITEMS"}, observed after every run).
// Nothing here waits on a wall-clock margin: concurrent searches are held in flight by a gate
// file the test creates once it has seen what it waits for, and the ttl case reasons only from
// the order of events it observed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type WebSocket from 'ws';
import {
  type AnyFrame,
  type SearchResult,
  type TestServer,
  demoRequest,
  invariantViolations,
  search,
  startServer,
  waitFor,
} from './helpers/harness.js';
import { demoScript, finalFrames, fixtureRequest, fixtureScript, getStats, killLeftovers, marker, sleep, taskViews } from './helpers/e2e.js';
import { type RedisServer, startRedis } from './helpers/redis.js';

// The demo scripts sleep a random 0..AGGREGATOR_DEMO_DELAY_MS (the harness sets 30): none here,
// the tests wait on events. Set before any server (and its script launcher) starts.
process.env.AGGREGATOR_DEMO_DELAY_MS = '0';

const MARK = marker('cache');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-cache-'));
const closers: (() => Promise<void>)[] = [];

t.teardown(async () => {
  await Promise.all(closers.map((close) => close()));
  killLeftovers(MARK);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const DEMO = {
  'aggregator.script.suppliers': demoScript('suppliers', MARK),
  'aggregator.script.items': demoScript('items', MARK),
};
const FIXTURE = {
  'aggregator.script.suppliers': fixtureScript('suppliers-from-code.php', MARK),
  'aggregator.script.items': fixtureScript('items-counted.php', MARK),
};
/** Searches held by a gate wait for the test, not for a clock: the script timeout is far out of the way. */
const GATED = { 'aggregator.timeout.script': 25, 'aggregator.timeout.session': 30 };

interface Server extends TestServer {
  /** Closes once (the test may close it early to read its whole log; teardown closes the rest). */
  stop(): Promise<void>;
}

async function serve(overrides: Record<string, string | number>): Promise<Server> {
  const srv = await startServer(overrides);
  let closing: Promise<void> | undefined;
  const stop = () => (closing ??= srv.close());
  closers.push(stop);
  return { ...srv, stop };
}

let fileSeq = 0;
/** A path in this run's temp dir that does not exist yet. */
const tmpFile = (name: string) => path.join(tmp, `${++fileSeq}-${name}`);

/** Runs items-counted.php recorded in `file` (of supplier `name` only, if given). */
function runsOf(file: string, name?: string): number {
  if (!fs.existsSync(file)) return 0;
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '' && (name === undefined || l === name)).length;
}

/**
 * A supplier object for items-counted.php. `params` stands for the shop's login at the
 * supplier: it is part of the cache key and must never reach the browser.
 */
function supplier(name: string, runs: string, extra: Record<string, unknown> = {}) {
  return { name, runs, info: { supplier: name }, params: { login: 'shop-1', password: `secret-${name}` }, ...extra };
}

/** The value of a /metrics sample (summed over the label sets containing `labels`); undefined when absent. */
async function metric(srv: TestServer, name: string, labels = ''): Promise<number | undefined> {
  const text = await (await fetch(`${srv.httpBase}/metrics`)).text();
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name && (m[2] ?? '').includes(labels)) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}
/** Items script runs the server finished (each run is observed once it exited). */
const itemsRuns = (srv: TestServer) => metric(srv, 'aggregator_script_run_seconds_count', 'task="ITEMS"');
const cacheFigures = async (srv: TestServer) => ({
  hits: await metric(srv, 'aggregator_cache_hits_total'),
  misses: await metric(srv, 'aggregator_cache_misses_total'),
  bypasses: await metric(srv, 'aggregator_cache_bypasses_total'),
});

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}
function logLines(srv: TestServer): LogLine[] {
  const file = path.join(srv.logDir, 'aggregator.log');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}
const logged = (srv: TestServer, msg: string) => logLines(srv).filter((l) => l.msg === msg).length;

/** What every search here must be: the frame invariants, SESSION SUCCESS, close 1000, no secret. */
function succeeded(t: Test, res: SearchResult, what: string): void {
  t.same(invariantViolations(res.frames), [], `${what}: the frame invariants hold`);
  t.equal(finalFrames(res.frames)[0]?._status, 'SUCCESS', `${what}: SESSION SUCCESS`);
  t.equal(res.closeCode, 1000, `${what}: close 1000`);
  // `_params` echoes the request's `code`, which for the fixture suppliers script is the
  // supplier list itself (test/fixtures/suppliers-from-code.php): not what is checked here.
  const sent = res.frames.map(({ _params, ...f }) => f);
  t.notOk(JSON.stringify(sent).includes('secret'), `${what}: no supplier params reach the browser`);
}

const supplierOf = (f: AnyFrame) => (f._info as { supplier?: string } | undefined)?.supplier ?? '?';

/**
 * Each task of a search by a stable label: SUPPLIERS, or the supplier's name prefixed by its
 * parent's label for nested tasks ("analog-3 > normal-1"); a repeated label gets "#2", "#3".
 */
function labels(frames: AnyFrame[]): Map<number, string> {
  const byId = new Map<number, string>();
  const used = new Map<string, number>();
  for (const view of taskViews(frames)) {
    let label = view.kind === 'SUPPLIERS' ? 'SUPPLIERS' : supplierOf(view.frames[0]!);
    if (view.parent !== undefined) label = `${byId.get(view.parent) ?? '?'} > ${label}`;
    const n = (used.get(label) ?? 0) + 1;
    used.set(label, n);
    byId.set(view.id, n > 1 ? `${label} #${n}` : label);
  }
  return byId;
}

/**
 * A search's frames per task label, in order, without what differs between two searches of the
 * same answers: `_session`, the `_id` and `_parent` numbers (`_parent` becomes its label), and
 * `_cached`. Tasks of one search finish in any order, so they are compared task by task.
 */
function canonical(frames: AnyFrame[]): Record<string, Record<string, unknown>[]> {
  const label = labels(frames);
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const f of frames) {
    const { _session, _id, _parent, _cached, ...rest } = f;
    const key = f._task === 'SESSION' ? 'SESSION' : (label.get(_id!) ?? '?');
    (out[key] ??= []).push(_parent === undefined ? rest : { ...rest, _parent: label.get(_parent) });
  }
  return out;
}

/** Per ITEMS task label: did its terminal frame carry `_cached: true`; and frames carrying `_cached` otherwise. */
function cachedFlags(frames: AnyFrame[]): { tasks: Record<string, boolean>; misplaced: AnyFrame[] } {
  const label = labels(frames);
  const tasks: Record<string, boolean> = {};
  const misplaced: AnyFrame[] = [];
  for (const f of frames) {
    const end = f._task === 'ITEMS' && f._status === 'SUCCESS';
    if (end) tasks[label.get(f._id!)!] = f._cached === true;
    if ('_cached' in f && !(end && f._cached === true)) misplaced.push(f);
  }
  return { tasks, misplaced };
}

/** Every ITEMS task's items' `run` numbers (items-counted.php), by label. */
function runNumbers(frames: AnyFrame[]): Record<string, number[]> {
  const label = labels(frames);
  const out: Record<string, number[]> = {};
  for (const f of frames) if (f._status === 'SENDING') (out[label.get(f._id!)!] ??= []).push(f.run as number);
  return out;
}

const allTrue = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, true]));
const allFalse = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, false]));

/** A search whose frames the test can watch while it runs. */
function start(srv: TestServer, request: unknown) {
  const frames: AnyFrame[] = [];
  let socket: WebSocket | undefined;
  const done = search(srv.wsBase, request, {
    onFrame: (f, ws) => {
      socket = ws;
      frames.push(f);
    },
  });
  return {
    frames,
    done,
    pending: () => frames.filter((f) => f._task === 'ITEMS' && f._status === 'PENDING').length,
    close: () => socket?.close(),
  };
}

t.test('off by default: every search runs its items scripts, no frame carries _cached', async (t) => {
  const srv = await serve(DEMO);
  t.equal(srv.agg.config.cache.ttlMs, 0, 'aggregator.cache.ttl is 0 unless set');
  const first = await search(srv.wsBase, demoRequest('normal'));
  const second = await search(srv.wsBase, demoRequest('normal'));
  succeeded(t, first, 'first');
  succeeded(t, second, 'second');
  t.equal(await itemsRuns(srv), 6, 'both searches ran all 3 items scripts');
  t.notOk(JSON.stringify([...first.frames, ...second.frames]).includes('_cached'), 'no _cached anywhere');
  t.same(canonical(second.frames), canonical(first.frames), 'the same frames both times');
  t.same(await cacheFigures(srv), { hits: 0, misses: 0, bypasses: 0 }, 'the cache metrics are there and stay 0');
  t.equal(logged(srv, 'items cache on'), 0, 'no cache was created');
});

t.test('a hit runs no script and replays the same frames, SUCCESS with _cached (demo scripts)', async (t) => {
  const srv = await serve({ ...DEMO, 'aggregator.cache.ttl': 600 });
  const fresh = await search(srv.wsBase, demoRequest('normal'));
  succeeded(t, fresh, 'fresh');
  t.equal(await itemsRuns(srv), 3, 'the fresh search ran the 3 items scripts');
  const cached = await search(srv.wsBase, demoRequest('normal'));
  succeeded(t, cached, 'cached');
  t.equal(await itemsRuns(srv), 3, 'the repeated search ran none');
  const suppliers = ['normal-1', 'normal-2', 'normal-3'];
  t.same(cachedFlags(fresh.frames), { tasks: allFalse(suppliers), misplaced: [] }, 'fresh: no _cached');
  t.same(cachedFlags(cached.frames), { tasks: allTrue(suppliers), misplaced: [] }, 'repeated: _cached on each ITEMS SUCCESS, nowhere else');
  t.same(canonical(cached.frames), canonical(fresh.frames), 'otherwise the very same frames, task by task');
  t.same(await cacheFigures(srv), { hits: 3, misses: 3, bypasses: 0 }, '3 misses, then 3 hits in /metrics');
  t.equal((await getStats(srv.httpBase)).taskSucceeded, 8, '/stats counts answered-from-cache tasks like any other');

  t.test('nested answers (analog) are replayed with their nested tasks', async (t) => {
    const fresh = await search(srv.wsBase, demoRequest('analog'));
    succeeded(t, fresh, 'fresh');
    t.equal(await itemsRuns(srv), 3 + 5, '3 suppliers + the 2 analogs of analog-3 ran');
    const cached = await search(srv.wsBase, demoRequest('analog'));
    succeeded(t, cached, 'cached');
    t.equal(await itemsRuns(srv), 8, 'the repeated search ran no items script, nested ones included');
    const tasks = ['normal-1', 'normal-2', 'analog-3', 'analog-3 > normal-1', 'analog-3 > normal-2'];
    t.same(cachedFlags(cached.frames), { tasks: allTrue(tasks), misplaced: [] }, 'every task, nested ones too, is a hit');
    t.same(canonical(cached.frames), canonical(fresh.frames), 'the same frames, nested tasks and their _parent included');
    // The nested tasks come from the replayed answer, so their PENDING frames keep their place:
    // after the parent's items, before the parent's SUCCESS.
    const label = labels(cached.frames);
    const views = taskViews(cached.frames);
    const parent = views.find((v) => label.get(v.id) === 'analog-3')!;
    const children = views.filter((v) => v.parent === parent.id);
    t.equal(children.length, 2, 'two nested tasks');
    t.ok(
      children.every((c) => c.first > cached.frames.indexOf(parent.items.at(-1)!) && c.first < parent.last),
      "nested PENDING after the parent's items, before its SUCCESS",
    );
  });
});

t.test('ttl: an answer is served while fresh, and the script runs again once ttl has passed', async (t) => {
  const TTL_MS = 500;
  const srv = await serve({ ...FIXTURE, 'aggregator.cache.ttl': TTL_MS / 1000 });
  const runs = tmpFile('ttl-runs');
  const request = fixtureRequest([supplier('ttl-1', runs)]);
  interface Seen {
    start: number;
    end: number;
    ran: boolean;
    cached: boolean;
    run: number | undefined;
  }
  const seen: Seen[] = [];
  // Searches back to back until one was answered from the cache and a later one ran the script
  // again: no sleep, the loop ends on what it observes (the deadline only turns a cache that
  // never expires, or never hits, into a failure instead of a hang).
  const deadline = performance.now() + 20_000;
  while (performance.now() < deadline) {
    const before = runsOf(runs);
    const startAt = performance.now();
    const res = await search(srv.wsBase, request);
    const endAt = performance.now();
    succeeded(t, res, `search ${seen.length + 1}`);
    const end = res.frames.find((f) => f._task === 'ITEMS' && f._status === 'SUCCESS');
    seen.push({ start: startAt, end: endAt, ran: runsOf(runs) > before, cached: end?._cached === true, run: runNumbers(res.frames)['ttl-1']?.[0] });
    if (seen.some((s) => !s.ran) && seen.length > 1 && seen.at(-1)!.ran) break;
  }
  t.ok(seen[0]?.ran, 'the first search ran the script');
  t.ok(seen.some((s) => !s.ran), 'a later search was answered without a run');
  t.ok(seen.length > 2 && seen.at(-1)!.ran, 'and a search after that ran the script again');
  t.same(
    seen.filter((s) => s.ran === s.cached),
    [],
    'each search either ran the script or carried _cached, never both, never neither',
  );
  const bad: string[] = [];
  let lastRun = seen[0]!;
  for (const [i, s] of seen.entries()) {
    if (i === 0) continue;
    if (s.ran) {
      // Stored during the last run (after it started), looked up during this search (before
      // it ended): a miss means that much time had passed.
      if (s.end - lastRun.start < TTL_MS) bad.push(`search ${i + 1} ran again ${Math.round(s.end - lastRun.start)} ms after the stored run began`);
      if (s.run !== lastRun.run! + 1) bad.push(`search ${i + 1}: run ${s.run} after run ${lastRun.run}`);
      lastRun = s;
    } else {
      // Stored before the last run's search ended, looked up after this search began (and
      // after its suppliers script ran, far more than the cache clock's 1 ms resolution).
      if (s.start - lastRun.end >= TTL_MS) bad.push(`search ${i + 1} was a hit ${Math.round(s.start - lastRun.end)} ms after the stored run`);
      if (s.run !== lastRun.run) bad.push(`search ${i + 1} replayed run ${s.run}, not the last run ${lastRun.run}`);
    }
  }
  t.same(bad, [], 'hits only within ttl of the run they replay, runs again only past it');
  t.equal(runsOf(runs), seen.filter((s) => s.ran).length, 'the script ran exactly for the searches that did not carry _cached');
});

t.test('failures are never cached: the next search runs the script again', async (t) => {
  const srv = await serve({ ...FIXTURE, 'aggregator.cache.ttl': 600, 'aggregator.timeout.script': 2 });
  const runs = tmpFile('fail-runs');
  const flag = tmpFile('fail-flag');
  const modes = { exit: 'E_SCRIPT_ERROR', json: 'E_ITEMS_JSON', response: 'E_ITEMS_RESPONSE', timeout: 'E_SCRIPT_TIMEOUT' };
  const request = fixtureRequest(Object.keys(modes).map((fail) => supplier(`fail-${fail}`, runs, { fail, failUntil: flag })));
  const ends = (res: SearchResult) =>
    Object.fromEntries(taskViews(res.frames).filter((v) => v.kind === 'ITEMS').map((v) => [supplierOf(v.frames[0]!), v.error ?? v.status]));
  const failing = Object.fromEntries(Object.entries(modes).map(([fail, code]) => [`fail-${fail}`, code]));
  const fine = Object.fromEntries(Object.keys(modes).map((fail) => [`fail-${fail}`, 'SUCCESS']));

  const first = await search(srv.wsBase, request);
  succeeded(t, first, 'first');
  t.same(ends(first), failing, 'each supplier failed its way: exit code, not JSON, no items array, timeout');
  t.equal(runsOf(runs), 4, '4 runs');
  const second = await search(srv.wsBase, request);
  succeeded(t, second, 'second');
  t.same(ends(second), failing, 'the same failures again');
  t.equal(runsOf(runs), 8, 'each failing supplier ran again: no failure was kept');
  t.same(await cacheFigures(srv), { hits: 0, misses: 8, bypasses: 0 }, 'every lookup a miss');
  t.equal(await metric(srv, 'aggregator_cache_stored_bytes'), 0, 'nothing was stored');

  fs.writeFileSync(flag, '');
  const third = await search(srv.wsBase, request);
  t.same(ends(third), fine, 'now the scripts answer');
  t.equal(runsOf(runs), 12, 'and ran for it');
  t.same(cachedFlags(third.frames).tasks, allFalse(Object.keys(fine)), 'fresh answers');
  const fourth = await search(srv.wsBase, request);
  t.equal(runsOf(runs), 12, 'the successful answers were kept: no run');
  t.same(cachedFlags(fourth.frames).tasks, allTrue(Object.keys(fine)), 'all four answered from the cache');
  t.same(runNumbers(fourth.frames), runNumbers(third.frames), 'with the items of the successful runs');

  t.test('a run killed because its browser left is not kept either', async (t) => {
    const gate = tmpFile('left-gate');
    const left = start(srv, fixtureRequest([supplier('left-1', runs, { gate })]));
    t.ok(await waitFor(() => runsOf(runs, 'left-1') === 1, 10_000), 'its script runs (held by the gate)');
    left.close();
    await left.done;
    // The killed run ends its pool slot; once the pool is idle the run is over.
    t.ok(await waitFor(() => srv.agg.pool.busy === 0, 10_000), 'the script was killed');
    fs.writeFileSync(gate, '');
    const again = await search(srv.wsBase, fixtureRequest([supplier('left-1', runs, { gate })]));
    succeeded(t, again, 'again');
    t.equal(runsOf(runs, 'left-1'), 2, 'the next search ran the script');
    t.same(cachedFlags(again.frames).tasks, { 'left-1': false }, 'and got a fresh answer');
  });
});

t.test('three identical searches at once run each supplier once (single flight across sessions)', async (t) => {
  const srv = await serve({ ...FIXTURE, ...GATED, 'aggregator.cache.ttl': 600 });
  const runs = tmpFile('flight-runs');
  const gate = tmpFile('flight-gate');
  const names = ['flight-1', 'flight-2', 'flight-3'];
  const request = fixtureRequest(names.map((n) => supplier(n, runs, { gate })));
  const searches = [start(srv, request), start(srv, request), start(srv, request)];
  // Held by the gate until every task of the three searches is queued and has looked the cache
  // up (a task's PENDING frame reaches this in-process client only after the server's tick that
  // looked it up) and the first search's three scripts run.
  t.ok(
    await waitFor(() => searches.every((s) => s.pending() === 3) && runsOf(runs) >= 3, 10_000),
    'all 9 tasks queued, 3 scripts running',
  );
  fs.writeFileSync(gate, '');
  const results = await Promise.all(searches.map((s) => s.done));
  results.forEach((res, i) => succeeded(t, res, `search ${i + 1}`));
  t.equal(runsOf(runs), 3, '3 runs for 9 tasks');
  t.same(
    names.map((n) => runsOf(runs, n)),
    [1, 1, 1],
    'one run per supplier',
  );
  const numbers = results.map((r) => runNumbers(r.frames));
  t.ok(
    numbers.every((n) => JSON.stringify(n) === JSON.stringify(numbers[0])),
    'all three searches got the items of the same runs',
  );
  results.forEach((r, i) => t.same(cachedFlags(r.frames), { tasks: allFalse(names), misplaced: [] }, `search ${i + 1}: shared runs carry no _cached`));
  t.same(await cacheFigures(srv), { hits: 0, misses: 9, bypasses: 0 }, 'tasks that shared a run count as misses');
  const later = await search(srv.wsBase, request);
  succeeded(t, later, 'a later search');
  t.equal(runsOf(runs), 3, 'a later search runs none');
  t.same(cachedFlags(later.frames).tasks, allTrue(names), 'and is answered from the cache');
});

t.test('a task sharing a running script is running too: aggregator.timeout.queue does not cancel it', async (t) => {
  const QUEUE_MS = 500;
  const srv = await serve({ ...FIXTURE, ...GATED, 'aggregator.cache.ttl': 600, 'aggregator.timeout.queue': QUEUE_MS / 1000 });
  const runs = tmpFile('queue-runs');
  const gate = tmpFile('queue-gate');
  const request = fixtureRequest([supplier('queue-1', runs, { gate })]);
  const first = start(srv, request);
  t.ok(await waitFor(() => runsOf(runs) === 1, 10_000), "the first search's script runs");
  const second = start(srv, request);
  t.ok(await waitFor(() => second.pending() === 1, 10_000), 'the second search has joined that run');
  t.match(await getStats(srv.httpBase), { poolBusy: 1, taskRunning: 2 }, 'one process, two running tasks');
  // Held past the queue timeout on purpose (a lower bound: a slower machine only holds it
  // longer): a task still counted as queued would be cancelled by now, while without the cache
  // it would have had a process of its own and an answer.
  await sleep(2 * QUEUE_MS);
  fs.writeFileSync(gate, '');
  const results = await Promise.all([first.done, second.done]);
  results.forEach((res, i) => succeeded(t, res, `search ${i + 1}`));
  t.same(
    results.map((r) => taskViews(r.frames).find((v) => v.kind === 'ITEMS')?.status),
    ['SUCCESS', 'SUCCESS'],
    'both tasks got the answer, neither was cancelled',
  );
  t.equal(runsOf(runs), 1, 'from one run');
});

t.test('params are part of the key: suppliers differing only in params never share an answer', async (t) => {
  const srv = await serve({ ...FIXTURE, ...GATED, 'aggregator.cache.ttl': 600 });
  const runs = tmpFile('params-runs');
  const gate = tmpFile('params-gate');
  // The same supplier for two shops (two logins), the first shop's twice: each object names the
  // same `name`, so only `params` tells them apart.
  const shop = (login: string) => ({ ...supplier('part-1', runs, { gate }), params: { login, password: `secret-${login}` } });
  const both = start(srv, fixtureRequest([shop('shop-a'), shop('shop-b'), shop('shop-a')]));
  t.ok(await waitFor(() => both.pending() === 3 && runsOf(runs) >= 2, 10_000), 'all three tasks queued, two scripts running');
  fs.writeFileSync(gate, '');
  const res = await both.done;
  succeeded(t, res, 'both shops');
  t.equal(runsOf(runs), 2, 'one run per login: shop-a twice in one search shared one run');
  const numbers = runNumbers(res.frames);
  const a = numbers['part-1']?.[0];
  const b = numbers['part-1 #2']?.[0];
  t.not(a, b, 'the two logins got answers of different runs');
  t.equal(numbers['part-1 #3']?.[0], a, "shop-a's second task got shop-a's answer");

  const onlyB = await search(srv.wsBase, fixtureRequest([shop('shop-b')]));
  succeeded(t, onlyB, 'shop-b alone');
  t.same(cachedFlags(onlyB.frames).tasks, { 'part-1': true }, 'a later shop-b search is a hit');
  t.equal(runNumbers(onlyB.frames)['part-1']?.[0], b, "with shop-b's answer, not shop-a's");
  const other = await search(srv.wsBase, fixtureRequest([shop('shop-c')]));
  t.same(cachedFlags(other.frames).tasks, { 'part-1': false }, 'a third login is a miss');
  t.equal(runsOf(runs), 3, 'and ran the script');
});

t.test('a hit takes no pool slot: it is answered while the only slot is busy', async (t) => {
  const srv = await serve({ ...FIXTURE, ...GATED, 'aggregator.cache.ttl': 600, 'aggregator.pool.executor': 1 });
  const runs = tmpFile('slot-runs');
  const gate = tmpFile('slot-gate');
  const hot = supplier('hot-1', runs);
  succeeded(t, await search(srv.wsBase, fixtureRequest([hot])), 'warm-up');
  t.equal(runsOf(runs, 'hot-1'), 1, 'hot-1 is cached');
  // blocker-1 comes first in the list: it takes the one slot and holds it until the gate opens.
  // hot-1 queued behind it would wait for it; answered from the cache it must not.
  const res = start(srv, fixtureRequest([supplier('blocker-1', runs, { gate }), hot]));
  const hotDone = () => res.frames.some((f) => f._status === 'SUCCESS' && supplierOf(f) === 'hot-1');
  t.ok(await waitFor(() => runsOf(runs, 'blocker-1') === 1 && hotDone(), 10_000), 'hot-1 succeeded while blocker-1 holds the slot');
  t.notOk(res.frames.some((f) => f._status === 'SUCCESS' && supplierOf(f) === 'blocker-1'), 'blocker-1 still runs');
  const stats = await getStats(srv.httpBase);
  t.match(stats, { poolBusy: 1, taskRunning: 1 }, 'one slot busy, one task running: the blocker');
  fs.writeFileSync(gate, '');
  const done = await res.done;
  succeeded(t, done, 'the search');
  t.same(cachedFlags(done.frames).tasks, { 'blocker-1': false, 'hot-1': true }, 'hot-1 was the hit');
  t.equal(runsOf(runs, 'hot-1'), 1, 'hot-1 never ran again');
});

/** A redis-server for this test, stopped at its end. */
async function redis(t: Test): Promise<RedisServer> {
  const server = await startRedis();
  t.teardown(() => server.stop());
  return server;
}

/** A server on `url`, once it is connected (the connection is made in the background at start). */
async function redisServe(t: Test, url: string, overrides: Record<string, string | number> = {}): Promise<Server> {
  const srv = await serve({ ...FIXTURE, 'aggregator.cache.ttl': 600, 'aggregator.cache.redis': url, ...overrides });
  t.ok(await waitFor(() => logged(srv, 'items cache: connected to Redis') === 1, 10_000), 'connected to Redis');
  return srv;
}

/** Waits until `srv` has stored `bytes` more than `before` in Redis (the store is fire and forget). */
async function storedMore(srv: TestServer, before: number): Promise<boolean> {
  return waitFor(async () => ((await metric(srv, 'aggregator_cache_stored_bytes')) ?? 0) > before, 10_000);
}

t.test('two instances with one Redis share answers', async (t) => {
  const server = await redis(t);
  const a = await redisServe(t, server.url);
  const b = await redisServe(t, server.url);
  const runs = tmpFile('shared-runs');
  const request = fixtureRequest([supplier('shared-1', runs), supplier('shared-2', runs)]);
  const onA = await search(a.wsBase, request);
  succeeded(t, onA, 'on A');
  t.equal(runsOf(runs), 2, 'A ran both scripts');
  t.ok(await storedMore(a, 0), "A's answers reached Redis");
  const onB = await search(b.wsBase, request);
  succeeded(t, onB, 'on B');
  t.equal(runsOf(runs), 2, 'B ran none');
  t.same(cachedFlags(onB.frames), { tasks: allTrue(['shared-1', 'shared-2']), misplaced: [] }, "B's tasks carry _cached");
  t.same(canonical(onB.frames), canonical(onA.frames), "B sent exactly A's frames");
  t.same(await cacheFigures(b), { hits: 2, misses: 0, bypasses: 0 }, "B's /metrics: 2 hits");
  t.same(await cacheFigures(a), { hits: 0, misses: 2, bypasses: 0 }, "A's /metrics: 2 misses");
});

t.test('Redis killed mid-load: every search still succeeds, /health stays 200, one warning', async (t) => {
  const server = await redis(t);
  const srv = await redisServe(t, server.url, GATED);
  const runs = tmpFile('kill-runs');
  const gate = tmpFile('kill-gate');
  const wave = (name: string, extra: Record<string, unknown>) =>
    Array.from({ length: 4 }, (_, i) => start(srv, fixtureRequest([1, 2, 3].map((j) => supplier(`${name}-${i}-${j}`, runs, extra)))));

  const health: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      health.push((await fetch(`${srv.httpBase}/health`)).status);
      await sleep(20);
    }
  })();

  // 4 searches of 3 suppliers in flight: looked up in Redis, their scripts held by the gate.
  const first = wave('before', { gate });
  t.ok(await waitFor(() => runsOf(runs) === 12, 10_000), '12 scripts running');
  await server.kill();
  // 4 more searches after Redis died: their lookups can only bypass.
  const second = wave('after', {});
  fs.writeFileSync(gate, '');
  const results = await Promise.all([...first, ...second].map((s) => s.done));
  polling = false;
  await poller;
  results.forEach((res, i) => succeeded(t, res, `search ${i + 1}`));
  t.ok(
    results.every((r) => taskViews(r.frames).every((v) => v.status === 'SUCCESS')),
    'every task of the 8 searches succeeded',
  );
  t.equal(runsOf(runs), 24, 'each of the 24 tasks ran its script');
  t.ok(health.length > 0 && health.every((s) => s === 200), `/health answered 200 throughout (${health.length} polls)`);
  const figures = await cacheFigures(srv);
  t.ok((figures.bypasses ?? 0) > 0, `lookups bypassed the dead Redis (${figures.bypasses})`);
  t.equal(figures.hits, 0, 'no hits');

  // Redis back (empty: it saved nothing): the instance uses it again by itself.
  await server.start();
  t.ok(await waitFor(() => logged(srv, 'items cache: Redis available again') === 1, 15_000), 'the instance noticed Redis is back');
  const stored = (await metric(srv, 'aggregator_cache_stored_bytes')) ?? 0;
  const again = fixtureRequest([supplier('back-1', runs)]);
  succeeded(t, await search(srv.wsBase, again), 'after the outage');
  t.ok(await storedMore(srv, stored), 'its answer was stored in Redis');
  const hit = await search(srv.wsBase, again);
  t.same(cachedFlags(hit.frames).tasks, { 'back-1': true }, 'and answers the next search');
  t.equal(runsOf(runs, 'back-1'), 1, 'without a run');

  await srv.stop(); // flushes the log
  const warnings = logLines(srv).filter((l) => l.level >= 40);
  t.same(
    warnings.map((l) => l.msg),
    ['items cache: Redis unavailable, searches go on without the cache'],
    'one warning for the outage, nothing else above info',
  );
  t.equal(logged(srv, 'items cache: Redis available again'), 1, 'one info line when it ended');
});
