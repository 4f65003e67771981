// The session machine driven exactly as production wires it: machines/session.ts with the real
// task host (src/task-host.ts), task machine, script actor, pool and counters; only the script
// runs are fakes that the test ends when it likes. Frame order, the invariants of
// docs/protocol.md and the /stats counters are checked on every run.
import fc from 'fast-check';
import pino from 'pino';
import t, { type Test } from 'tap';
import { type SessionInput, type SessionLogic, sessionMachine } from '../machines/session.js';
import { parseCommand } from '../src/command.js';
import { loadConfig } from '../src/config.js';
import { itemFrameText } from '../src/frames.js';
import type { JsonObject } from '../src/json.js';
import { Pool } from '../src/pool.js';
import type { RunResult, RunScript, ScriptFailure } from '../src/processes/protocol.js';
import { createSession, sessionInput } from '../src/session.js';
import { createItemsCache } from '../src/cache/items-cache.js';
import { Stats } from '../src/stats.js';
import { TaskBoard, taskHost } from '../src/task-host.js';
import { type AnyFrame, invariantViolations, waitFor } from './helpers/harness.js';

interface FakeRun {
  readonly id: number;
  readonly stdin: string;
  readonly command: string;
  /** Set when the run was aborted: the real runner kills the process group. */
  aborted: boolean;
  settled: boolean;
  resolve(res: RunResult): void;
}

const request = { code: '3310', brand: 'ctr', apikey: 'secret-key', analog: 1 };
const params = { code: '3310', brand: 'ctr', analog: 1 };
const silent = pino({ level: 'silent' });
/** Lets the pool, the runs and the actors settle (promises, then one turn of the loop). */
const settle = () => new Promise<void>((r) => setImmediate(r));

interface Options {
  input?: Partial<SessionInput>;
  /** Changes the production logic (only to inject a bug). */
  patch?: (logic: SessionLogic) => SessionLogic;
  pool?: number;
  queueTimeoutMs?: number;
  nextTaskId?: () => number;
}

function session(opts: Options = {}) {
  const { config } = loadConfig({ argv: [], env: {}, cwd: '/nonexistent' });
  config.timeout.queueMs = opts.queueTimeoutMs ?? 0;
  const pool = new Pool(opts.pool ?? 100, 'fair');
  const stats = new Stats(pool);
  const board = new TaskBoard();
  const frames: AnyFrame[] = [];
  const closes: { code: number; reason: string }[] = [];
  const errors: unknown[] = [];
  const runs = new Map<number, FakeRun>();
  let n = 100;
  const nextTaskId = opts.nextTaskId ?? (() => ++n);

  const run: RunScript = (o) =>
    new Promise<RunResult>((resolve) => {
      const id = Number(o.env?.AGGREGATOR_TASK_ID);
      const r: FakeRun = {
        id,
        stdin: o.input,
        command: o.command.line,
        aborted: false,
        settled: false,
        resolve: (res) => {
          if (r.settled) return;
          r.settled = true;
          resolve(res);
        },
      };
      runs.set(id, r);
      o.signal?.addEventListener('abort', () => {
        r.aborted = true;
        r.resolve({ ok: false, code: 'E_SCRIPT_ERROR', reason: 'cancelled', cancelled: true, durationMs: 1 });
      });
    });
  const commands = { suppliers: parseCommand('suppliers.php'), items: parseCommand('items.php') };
  const logic = sessionMachine.provide({
    actors: { taskHost: taskHost({ config, pool, stats, commands, run, log: silent, nextTaskId, board, cache: createItemsCache({}, silent) }) },
  });
  const actor = createSession(opts.patch ? opts.patch(logic) : logic, { ...sessionInput('S1', config), ...opts.input });
  actor.on('frame', ({ frame }) => void frames.push(frame as AnyFrame));
  actor.on('items', ({ task, items }) => {
    for (const item of items) frames.push(JSON.parse(itemFrameText(item, task)) as AnyFrame);
  });
  actor.on('close', (c) => void closes.push({ code: c.code, reason: c.reason }));
  actor.subscribe({ error: (e) => void errors.push(e) });
  actor.start();

  const runOf = (id: number) => {
    const r = runs.get(id);
    if (!r) throw new Error(`task ${id} has no script run (yet)`);
    return r;
  };
  const answer = async (id: number, stdout: string) => {
    runOf(id).resolve({ ok: true, stdout, pid: 1, durationMs: 1 });
    await settle();
  };
  return {
    actor,
    frames,
    closes,
    errors,
    runs,
    stats,
    board,
    pool,
    run: runOf,
    /** A suppliers answer. */
    suppliers: (id: number, suppliers: JsonObject[]) => answer(id, JSON.stringify({ suppliers })),
    /** An items answer, with nested suppliers when given. */
    items: (id: number, items: JsonObject[] = [], suppliers?: JsonObject[]) =>
      answer(id, JSON.stringify(suppliers ? { items, suppliers } : { items })),
    answer,
    fail: async (id: number, code: ScriptFailure) => {
      runOf(id).resolve({ ok: false, code, reason: 'test', cancelled: false, durationMs: 1 });
      await settle();
    },
    request: async (r: JsonObject = request) => {
      actor.send({ type: 'REQUEST', request: r, params, taskId: nextTaskId() });
      await settle();
    },
    /** Frames as short strings, e.g. "101 PENDING", "102 ERROR E_X", "SESSION SUCCESS". */
    trace: () =>
      frames.map((f) => [f._task === 'SESSION' ? 'SESSION' : String(f._id), f._status, f._error].filter((x) => x !== undefined).join(' ')),
    done: () => actor.getSnapshot().status === 'done',
    state: () => actor.getSnapshot().value,
    running: () => [...runs.values()].filter((r) => !r.settled).map((r) => r.id),
  };
}

type Session = ReturnType<typeof session>;

/** What every run must satisfy, whatever happened. */
async function checkEnd(t: Test, s: Session) {
  await settle();
  t.same(invariantViolations(s.frames), [], 'the invariants of docs/protocol.md hold');
  t.same(s.errors, [], 'the machine never errored');
  t.ok(s.done(), 'the session reached a final state');
  t.same(s.running(), [], 'every script run ended or was aborted');
  t.equal(s.actor.getSnapshot().context.open.size, 0, 'no open task left');
  t.match(s.stats.toJSON(), { taskPending: 0, taskRunning: 0 }, 'the counters closed every task');
  const st = s.stats.toJSON();
  t.equal(st.taskTotal, st.taskSucceeded + st.taskFailed);
  t.same(s.board.live, { queued: 0, running: 0 }, 'no task actor left');
  t.equal(s.pool.busy + s.pool.queued, 0, 'the pool is empty');
}

t.test('a nested search: frame order, _info, _parent, _params, stdin of each script', async (t) => {
  const s = session();
  t.same(s.state(), 'awaitingRequest');
  await s.request();
  t.same(s.trace(), ['101 PENDING']);
  t.equal(s.run(101).command, 'suppliers.php', 'the suppliers step runs the suppliers command');
  t.same(JSON.parse(s.run(101).stdin), request, 'the suppliers script gets the whitelisted request');
  t.equal(s.stats.taskRunning, 1, 'counted running once its script runs');

  const supA = { class: 'analog-1', info: { name: 'A' }, params: { login: 'secret' } };
  const supB = { class: 'normal-2' };
  await s.suppliers(101, [supA, supB]);
  t.same(s.trace(), ['101 PENDING', '102 PENDING', '103 PENDING', '101 SUCCESS'], 'children PENDING before the parent ends');
  t.same(s.frames[1], { _session: 'S1', _task: 'ITEMS', _id: 102, _status: 'PENDING', _info: { name: 'A' } });
  t.notOk('_parent' in s.frames[1]!, 'no _parent for children of the SUPPLIERS task');
  t.notOk('_info' in s.frames[2]!, 'no _info when the supplier has none');
  t.equal(s.run(102).stdin, JSON.stringify(supA), 'the items script gets the supplier exactly, params included');
  t.equal(s.run(102).command, 'items.php');

  const n1 = { class: 'normal-1', info: null };
  await s.items(102, [{ code: 'x1', _id: 5 }, { code: 'x2' }], [n1]);
  t.same(s.trace().slice(4), ['102 SENDING', '102 SENDING', '104 PENDING', '102 SUCCESS'], 'items, children, then the end');
  t.same(s.frames[4], { code: 'x1', _session: 'S1', _task: 'ITEMS', _id: 102, _status: 'SENDING', _info: { name: 'A' } });
  t.equal(s.frames[6]!._parent, 102, 'a child of an ITEMS task has _parent');
  t.ok('_info' in s.frames[6]! && s.frames[6]!._info === null, 'info: null → _info: null');
  t.same(s.frames[7]!._info, { name: 'A' }, '_info on the terminal frame too');

  await s.answer(103, 'not json');
  t.same(s.frames.at(-1), { _session: 'S1', _task: 'ITEMS', _id: 103, _status: 'ERROR', _error: 'E_ITEMS_JSON', _params: params });
  t.notOk(s.done(), 'task 104 still runs');

  await s.items(104, [{ code: 'y' }]);
  t.same(s.trace().slice(-3), ['104 SENDING', '104 SUCCESS', 'SESSION SUCCESS']);
  t.equal(s.frames.at(-2)!._parent, 102);
  t.same(s.closes, [{ code: 1000, reason: '' }], 'SUCCESS even though an items task failed');
  t.notMatch(JSON.stringify(s.frames), /secret/, 'no params or apikey in any frame');
  t.match(s.stats.toJSON(), { taskTotal: 4, taskSucceeded: 3, taskFailed: 1 });
  t.same(s.board.ended, { succeeded: 3, failed: 1, cancelled: 0, stopped: 0 });
  await checkEnd(t, s);
});

t.test('suppliers-input=params wraps the request as the original did', async (t) => {
  const s = session({ input: { suppliersInput: 'params' } });
  await s.request();
  t.same(JSON.parse(s.run(101).stdin), { params: request });
  await s.suppliers(101, []);
  await checkEnd(t, s);
});

t.test('zero suppliers: SESSION SUCCESS at once', async (t) => {
  const s = session();
  await s.request();
  await s.suppliers(101, []);
  t.same(s.trace(), ['101 PENDING', '101 SUCCESS', 'SESSION SUCCESS']);
  t.same(s.closes, [{ code: 1000, reason: '' }]);
  await checkEnd(t, s);
});

t.test('suppliers failure: SESSION ERROR with that code, close 1000', async (t) => {
  for (const [code, end] of [
    ['E_SUPPLIERS_JSON', (s: Session) => s.answer(101, '<html>')],
    ['E_SUPPLIERS_RESPONSE', (s: Session) => s.answer(101, '{"items":[]}')],
    ['E_SCRIPT_TIMEOUT', (s: Session) => s.fail(101, 'E_SCRIPT_TIMEOUT')],
    ['E_SCRIPT_ERROR', (s: Session) => s.fail(101, 'E_SCRIPT_ERROR')],
    ['E_SCRIPT_START', (s: Session) => s.fail(101, 'E_SCRIPT_START')],
  ] as const) {
    const s = session();
    await s.request();
    await end(s);
    t.same(s.trace(), ['101 PENDING', `101 ERROR ${code}`, `SESSION ERROR ${code}`], code);
    t.same(s.frames.at(-1)!._params, params, 'the SESSION frame echoes _params');
    t.same(s.closes, [{ code: 1000, reason: code }]);
    await checkEnd(t, s);
  }
});

t.test('session timeout: queued → E_SCRIPT_CANCELLED, running → E_SESSION_TIMEOUT, close 4408', async (t) => {
  const s = session({ input: { sessionTimeoutMs: 100 }, pool: 2 });
  await s.request();
  await s.suppliers(101, [{ class: 'a' }, { class: 'b' }, { class: 'c' }]);
  t.same(s.running(), [102, 103], 'a pool of 2: two run, one waits');
  await s.items(102, [{ code: 'done' }]);
  t.same(s.running(), [103, 104], 'the freed slot goes to the next');
  // A third supplier's answer adds a task that has to wait (the pool is full).
  await s.items(103, [], [{ class: 'd' }]);
  t.same(s.running(), [104, 105]);
  await s.items(104, [], [{ class: 'e' }, { class: 'f' }]);
  t.same(s.running(), [105, 106], '107 waits');
  t.ok(await waitFor(() => s.closes.length > 0, 5000, 5), 'the session timed out');
  t.same(s.trace().slice(-4), [
    // The order of docs/protocol.md: queued ones removed, then running ones killed, then the SESSION frame.
    '107 ERROR E_SCRIPT_CANCELLED',
    '105 ERROR E_SESSION_TIMEOUT',
    '106 ERROR E_SESSION_TIMEOUT',
    'SESSION ERROR E_SESSION_TIMEOUT',
  ]);
  t.same(s.closes, [{ code: 4408, reason: 'E_SESSION_TIMEOUT' }]);
  await settle();
  t.ok(s.run(105).aborted && s.run(106).aborted, 'the running scripts were stopped (killed)');
  t.notOk(s.runs.has(107), 'the queued one never ran');
  const before = s.frames.length;
  s.run(105).resolve({ ok: true, stdout: '{"items":[{"late":1}]}', pid: 1, durationMs: 1 });
  await settle();
  t.equal(s.frames.length, before, 'a late result after the end sends nothing');
  t.same(s.board.ended, { succeeded: 4, failed: 0, cancelled: 0, stopped: 3 });
  await checkEnd(t, s);
});

t.test('session timeout while the suppliers script runs', async (t) => {
  const s = session({ input: { sessionTimeoutMs: 30 } });
  await s.request();
  t.ok(await waitFor(() => s.done(), 2000, 5));
  t.same(s.trace(), ['101 PENDING', '101 ERROR E_SESSION_TIMEOUT', 'SESSION ERROR E_SESSION_TIMEOUT']);
  t.same(s.closes, [{ code: 4408, reason: 'E_SESSION_TIMEOUT' }]);
  await checkEnd(t, s);
});

t.test('a socket that sends no request: E_SESSION_TIMEOUT and close 4408 after the request timeout', async (t) => {
  const s = session({ input: { requestTimeoutMs: 30 } });
  t.ok(await waitFor(() => s.done(), 2000, 5));
  t.same(s.frames, [{ _session: 'S1', _task: 'SESSION', _status: 'ERROR', _error: 'E_SESSION_TIMEOUT' }]);
  t.same(s.closes, [{ code: 4408, reason: 'E_SESSION_TIMEOUT' }]);
  await checkEnd(t, s);

  const r = session({ input: { requestTimeoutMs: 60, sessionTimeoutMs: 10_000 } });
  await r.request();
  await new Promise((res) => setTimeout(res, 120));
  t.notOk(r.done(), 'the request timeout ends with the request');
  await r.suppliers(101, []);
  await checkEnd(t, r);
});

t.test('CLOSED ends open tasks and stops the scripts; nothing is closed by us', async (t) => {
  const s = session({ pool: 1 });
  await s.request();
  await s.suppliers(101, [{ class: 'a' }, { class: 'b' }]);
  t.same(s.running(), [102]);
  s.actor.send({ type: 'CLOSED' });
  await settle();
  t.ok(s.done());
  t.same(s.trace().slice(-2), ['103 ERROR E_SCRIPT_CANCELLED', '102 ERROR E_SESSION_CLOSED'], 'every task still ends');
  t.notOk(s.frames.some((f) => f._task === 'SESSION'), 'no SESSION frame: the browser is gone');
  t.same(s.closes, []);
  t.equal(s.actor.getSnapshot().context.error, 'E_SESSION_CLOSED');
  t.ok(s.run(102).aborted, 'the running script was killed');
  t.notOk(s.runs.has(103), 'the queued one never ran');
  t.same(invariantViolations(s.frames), []);
  t.same(s.errors, []);
  t.match(s.stats.toJSON(), { taskPending: 0, taskRunning: 0, taskFailed: 2 }, 'both counted as failed');

  const idle = session();
  idle.actor.send({ type: 'CLOSED' });
  t.ok(idle.done(), 'closing before any request ends the session too');
  t.same(idle.frames, []);
});

t.test('SHUTDOWN: running → E_SERVER_SHUTDOWN, queued → cancelled, SESSION ERROR, close 1001', async (t) => {
  const s = session({ pool: 1 });
  await s.request();
  await s.suppliers(101, [{ class: 'a' }, { class: 'b' }]);
  s.actor.send({ type: 'SHUTDOWN' });
  t.same(s.trace().slice(-3), ['103 ERROR E_SCRIPT_CANCELLED', '102 ERROR E_SERVER_SHUTDOWN', 'SESSION ERROR E_SERVER_SHUTDOWN']);
  t.same(s.closes, [{ code: 1001, reason: 'E_SERVER_SHUTDOWN' }]);
  await checkEnd(t, s);

  const idle = session();
  idle.actor.send({ type: 'SHUTDOWN' });
  t.same(idle.trace(), ['SESSION ERROR E_SERVER_SHUTDOWN']);
  t.same(idle.closes, [{ code: 1001, reason: 'E_SERVER_SHUTDOWN' }]);
  await checkEnd(t, idle);
});

t.test('a second request while searching: E_SESSION_REUSED, the search goes on', async (t) => {
  const s = session();
  await s.request();
  await s.request({ ...request, code: 'other' });
  s.actor.send({ type: 'BAD_REQUEST', code: 'E_REQUEST_JSON' });
  t.same(s.trace(), ['101 PENDING', 'SESSION ERROR E_SESSION_REUSED', 'SESSION ERROR E_SESSION_REUSED']);
  t.same(s.closes, [], 'the socket stays open');
  t.same([...s.runs.keys()], [101], 'no second suppliers task');
  await s.suppliers(101, [{ class: 'a' }]);
  const [child] = s.running();
  await s.items(child ?? -1, [{ code: 'i' }]);
  t.same(s.trace().slice(-4), ['101 SUCCESS', `${child} SENDING`, `${child} SUCCESS`, 'SESSION SUCCESS']);
  t.same(s.closes, [{ code: 1000, reason: '' }]);
  await checkEnd(t, s);
});

t.test('a bad first request: SESSION ERROR and close 4400', async (t) => {
  const s = session();
  s.actor.send({ type: 'BAD_REQUEST', code: 'E_REQUEST_JSON' });
  t.same(s.frames, [{ _session: 'S1', _task: 'SESSION', _status: 'ERROR', _error: 'E_REQUEST_JSON' }]);
  t.same(s.closes, [{ code: 4400, reason: 'E_REQUEST_JSON' }]);
  await checkEnd(t, s);

  const p = session();
  p.actor.send({ type: 'BAD_REQUEST', code: 'E_ILLEGAL_REQUEST', params: { code: 'x' } });
  t.same(p.frames, [{ _session: 'S1', _task: 'SESSION', _status: 'ERROR', _error: 'E_ILLEGAL_REQUEST', _params: { code: 'x' } }]);
  t.same(p.closes, [{ code: 4400, reason: 'E_ILLEGAL_REQUEST' }]);
  await checkEnd(t, p);
});

t.test('taskLimit: tasks over the limit get PENDING then E_SCRIPT_CANCELLED at once', async (t) => {
  const s = session({ input: { taskLimit: 3 } });
  await s.request();
  await s.suppliers(101, [{ class: 'a' }, { class: 'b' }, { class: 'c' }, { class: 'd' }]);
  t.same(s.trace(), [
    '101 PENDING',
    '102 PENDING',
    '103 PENDING',
    '104 PENDING',
    '104 ERROR E_SCRIPT_CANCELLED',
    '105 PENDING',
    '105 ERROR E_SCRIPT_CANCELLED',
    '101 SUCCESS',
  ]);
  t.notOk(s.runs.has(104) || s.runs.has(105), 'no script for a task over the limit');
  // Nested suppliers count against the same limit.
  await s.items(102, [], [{ class: 'e' }]);
  t.same(s.trace().slice(-3), ['106 PENDING', '106 ERROR E_SCRIPT_CANCELLED', '102 SUCCESS']);
  await s.items(103);
  t.same(s.trace().at(-1), 'SESSION SUCCESS');
  t.match(s.stats.toJSON(), { taskTotal: 6, taskSucceeded: 3, taskFailed: 3 }, 'refused tasks are counted as failed');
  await checkEnd(t, s);
});

t.test('queue timeout: a task still queued gets E_SCRIPT_CANCELLED, a running one does not', async (t) => {
  const s = session({ queueTimeoutMs: 30, pool: 1 });
  await s.request();
  await s.suppliers(101, [{ class: 'a' }, { class: 'b' }]);
  t.ok(await waitFor(() => s.trace().includes('103 ERROR E_SCRIPT_CANCELLED'), 2000, 5));
  t.notOk(s.runs.has(103), 'the queued job was dropped');
  t.notOk(s.run(102).aborted, 'the running one goes on');
  await new Promise((r) => setTimeout(r, 40));
  t.notOk(s.trace().some((x) => x.startsWith('102 ERROR')), 'the running task is not cancelled');
  await s.items(102, [{ code: 'i' }]);
  t.same(s.trace().slice(-3), ['102 SENDING', '102 SUCCESS', 'SESSION SUCCESS']);
  t.equal(s.board.ended.cancelled, 1, 'the task machine ended it in cancelled');
  await checkEnd(t, s);

  // The suppliers task itself waiting too long ends the session: a full pool keeps it queued.
  const q = session({ queueTimeoutMs: 30, pool: 1 });
  q.pool.run('someone else', () => new Promise((r) => setTimeout(r, 200)));
  await q.request();
  t.ok(await waitFor(() => q.done(), 2000, 5));
  t.same(q.trace(), ['101 PENDING', '101 ERROR E_SCRIPT_CANCELLED', 'SESSION ERROR E_SCRIPT_CANCELLED']);
  t.same(q.closes, [{ code: 1000, reason: 'E_SCRIPT_CANCELLED' }]);
  t.ok(await waitFor(() => q.pool.busy === 0, 2000, 5));
  await checkEnd(t, q);
});

t.test('task ids are unique across sessions (one counter per process)', async (t) => {
  let n = 0;
  const nextTaskId = () => ++n;
  const a = session({ nextTaskId });
  const b = session({ nextTaskId });
  await a.request();
  await b.request();
  await a.suppliers(1, [{ class: 'x' }, { class: 'y' }]);
  await b.suppliers(2, [{ class: 'z' }]);
  t.same([...a.runs.keys(), ...b.runs.keys()], [1, 3, 4, 2, 5]);
  a.actor.stop();
  b.actor.stop();
  await settle();
  t.same([...a.running(), ...b.running()], [], 'stopping a session stops its tasks');
});

t.test('a throw inside a task (a bug) ends it with E_UNKNOWN instead of hanging', async (t) => {
  const s = session();
  await s.request();
  // A result the script actor cannot read: it throws while handling it.
  s.run(101).resolve(null as unknown as RunResult);
  await settle();
  t.same(s.trace(), ['101 PENDING', '101 ERROR E_UNKNOWN', 'SESSION ERROR E_UNKNOWN']);
  t.same(s.closes, [{ code: 1000, reason: 'E_UNKNOWN' }], 'a search that ran to its end closes 1000');
  await checkEnd(t, s);
});

t.test('the session machine fails (a bug in one of its actions): its task host stops every task', async (t) => {
  const bug = (logic: SessionLogic) =>
    logic.provide({
      actions: {
        sendReused: () => {
          throw new Error('a bug in an action');
        },
      },
    });
  const s = session({ pool: 1, patch: bug });
  await s.request();
  await s.suppliers(101, [{ class: 'a' }, { class: 'b' }]);
  await s.request();
  t.equal(s.actor.getSnapshot().status, 'error', 'the machine failed');
  t.equal(s.errors.length, 1);
  await settle();
  t.ok(s.run(102).aborted, 'the running script was killed');
  t.same(s.running(), []);
  t.match(s.stats.toJSON(), { taskPending: 0, taskRunning: 0 }, 'no counter left open');
  t.same(s.board.live, { queued: 0, running: 0 });
});

// Random drives: whatever the scripts do and whenever the session ends, the invariants hold.
t.test('property: random runs keep the invariants and close every counter', async (t) => {
  const step = fc.record({
    pick: fc.nat(),
    act: fc.constantFrom('ok', 'ok', 'ok', 'fail', 'reuse', 'end'),
    items: fc.nat({ max: 2 }),
    nested: fc.nat({ max: 3 }),
    info: fc.constantFrom(undefined, null, 'i'),
    ending: fc.constantFrom('CLOSED', 'SHUTDOWN') as fc.Arbitrary<'CLOSED' | 'SHUTDOWN'>,
  });
  let runs = 0;
  let nested = 0;
  let items = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(step, { maxLength: 40 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 4 }), async (steps, taskLimit, pool) => {
      runs++;
      const s = session({ input: { taskLimit }, pool });
      await s.request();
      for (const st of steps) {
        if (s.done()) break;
        const running = s.running();
        const id = running[st.pick % Math.max(running.length, 1)];
        if (st.act === 'reuse') await s.request();
        else if (st.act === 'end') {
          s.actor.send({ type: st.ending });
          await settle();
        } else if (id !== undefined && st.act === 'fail') await s.fail(id, 'E_SCRIPT_ERROR');
        else if (id !== undefined && s.run(id).command === 'suppliers.php') {
          await s.suppliers(id, Array.from({ length: st.nested + 1 }, (_, k): JsonObject => (st.info === undefined ? { k } : { k, info: st.info })));
        } else if (id !== undefined) {
          const suppliers = Array.from({ length: st.nested }, (_, k): JsonObject => (st.info === undefined ? { k } : { k, info: st.info }));
          await s.items(id, Array.from({ length: st.items }, (_, k) => ({ k })), suppliers);
        }
      }
      if (!s.done()) s.actor.send({ type: 'SHUTDOWN' });
      await settle();
      const bad = invariantViolations(s.frames);
      const st = s.stats.toJSON();
      const counted = st.taskPending === 0 && st.taskRunning === 0 && st.taskTotal === st.taskSucceeded + st.taskFailed;
      if (bad.length > 0 || s.errors.length > 0 || !s.done() || s.running().length > 0 || !counted) {
        throw new Error(`${bad.join('; ')} errors=${s.errors.length} counted=${counted} trace=${s.trace().join(', ')}`);
      }
      // Every task frame of a nested task names an ITEMS parent that exists in this session.
      const ids = new Set(s.frames.map((f) => f._id));
      if (s.frames.some((f) => f._parent !== undefined && !ids.has(f._parent))) throw new Error('dangling _parent');
      nested += s.frames.filter((f) => f._parent !== undefined).length;
      items += s.frames.filter((f) => f._status === 'SENDING').length;
    }),
    { numRuns: 200 },
  );
  t.ok(runs >= 200, `${runs} random runs`);
  t.ok(nested > 0 && items > 0, `the runs covered nested tasks (${nested} frames) and items (${items})`);
});
