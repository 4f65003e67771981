// The session machine (machines/session.ts + machines/task.ts) driven with fakes: the effects
// collect what they are given, and a fake script actor lets the test decide when each task
// starts and how it ends. Frame order and the SPEC 3.3 invariants are checked on every run.
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { SimulatedClock, createActor, fromCallback } from 'xstate';
import { type SessionInput, sessionMachine } from '../machines/session.js';
import { type ScriptEvent, type TaskInput, type TaskResult, taskMachine } from '../machines/task.js';
import type { ErrorCode } from '../src/errors.js';
import { itemFrameText } from '../src/frames.js';
import type { JsonObject } from '../src/json.js';
import { type AnyFrame, invariantViolations, waitFor } from './helpers/harness.js';

interface FakeScript {
  readonly input: Pick<TaskInput, 'id' | 'kind' | 'stdin'>;
  /** Set when the actor is stopped: the real one drops the queued job or kills the group. */
  cleanedUp: boolean;
  start(): void;
  finish(result: TaskResult): void;
}

const request = { code: '3310', brand: 'ctr', apikey: 'secret-key', analog: 1 };
const params = { code: '3310', brand: 'ctr', analog: 1 };
const ok = (items: JsonObject[] = [], suppliers: JsonObject[] = []): TaskResult => ({ ok: true, items, suppliers });
const err = (code: ErrorCode): TaskResult => ({ ok: false, code });

function session(opts: Partial<SessionInput> = {}, clock?: SimulatedClock) {
  const frames: AnyFrame[] = [];
  const closes: { code: number; reason: string }[] = [];
  const started: number[] = [];
  const errors: unknown[] = [];
  const scripts = new Map<number, FakeScript>();
  let nextId = 100;

  const script = fromCallback<ScriptEvent, Pick<TaskInput, 'id' | 'kind' | 'stdin'>>(({ input, sendBack }) => {
    const s: FakeScript = {
      input,
      cleanedUp: false,
      start: () => sendBack({ type: 'STARTED' }),
      finish: (result) => sendBack({ type: 'FINISHED', result }),
    };
    scripts.set(input.id, s);
    return () => {
      s.cleanedUp = true;
    };
  });
  const machine = sessionMachine.provide({
    actions: {
      send: (_, frame) => void frames.push(frame as AnyFrame),
      sendItems: (_, { task, items }) => {
        for (const item of items) frames.push(JSON.parse(itemFrameText(item, task)) as AnyFrame);
      },
      close: (_, p) => void closes.push(p),
      taskStarted: (_, { id }) => void started.push(id),
    },
    actors: { task: taskMachine.provide({ actors: { script } }) },
  });
  const actor = createActor(machine, {
    input: {
      session: 'S1',
      sessionTimeoutMs: 10_000,
      queueTimeoutMs: 0,
      requestTimeoutMs: 10_000,
      suppliersInput: 'request',
      taskLimit: 10_000,
      infoField: 'info',
      nextTaskId: () => ++nextId,
      ...opts,
    },
    // (an undefined clock would replace xstate's default one)
    ...(clock ? { clock } : {}),
  });
  actor.subscribe({ error: (e) => void errors.push(e) });
  actor.start();
  const script$ = (id: number) => {
    const s = scripts.get(id);
    if (!s) throw new Error(`no script actor for task ${id}`);
    return s;
  };
  /** Frames as short strings, e.g. "101 PENDING", "102 ERROR E_X", "SESSION SUCCESS". */
  const trace = () =>
    frames.map((f) =>
      [f._task === 'SESSION' ? 'SESSION' : String(f._id), f._status, f._error].filter((x) => x !== undefined).join(' '),
    );
  return {
    actor,
    frames,
    closes,
    started,
    errors,
    scripts,
    script: script$,
    trace,
    request: () => actor.send({ type: 'REQUEST', request, params }),
    done: () => actor.getSnapshot().status === 'done',
    state: () => actor.getSnapshot().value,
  };
}

type Session = ReturnType<typeof session>;

/** What every run must satisfy, whatever happened. */
function checkEnd(t: Test, s: Session) {
  t.same(invariantViolations(s.frames), [], 'SPEC 3.3 invariants hold');
  t.same(s.errors, [], 'the machine never errored');
  t.ok(s.done(), 'the session reached a final state');
  t.same(
    [...s.scripts.values()].filter((x) => !x.cleanedUp).map((x) => x.input.id),
    [],
    'every script actor was stopped (its cleanup ran)',
  );
  t.equal(s.actor.getSnapshot().context.open.size, 0, 'no open task left');
}

t.test('a nested search: frame order of SPEC 3.3/3.5, _info, _parent, _params', async (t) => {
  const s = session();
  t.same(s.state(), 'awaitingRequest');
  s.request();
  t.same(s.trace(), ['101 PENDING']);
  t.equal(s.script(101).input.kind, 'SUPPLIERS');
  t.same(JSON.parse(s.script(101).input.stdin), request, 'the suppliers script gets the whitelisted request');

  s.script(101).start();
  t.same(s.started, [101], 'taskStarted once the script runs');
  const supA = { class: 'analog-1', info: { name: 'A' }, params: { login: 'secret' } };
  const supB = { class: 'normal-2' };
  s.script(101).finish(ok([], [supA, supB]));
  t.same(s.trace(), ['101 PENDING', '102 PENDING', '103 PENDING', '101 SUCCESS'], 'children PENDING before the parent ends');
  t.same(s.frames[1], { _session: 'S1', _task: 'ITEMS', _id: 102, _status: 'PENDING', _info: { name: 'A' } });
  t.notOk('_parent' in s.frames[1]!, 'no _parent for children of the SUPPLIERS task');
  t.notOk('_info' in s.frames[2]!, 'no _info when the supplier has none');
  t.equal(s.script(102).input.stdin, JSON.stringify(supA), 'the items script gets the supplier exactly, params included');

  s.script(102).start();
  s.script(103).start();
  const n1 = { class: 'normal-1', info: null };
  s.script(102).finish(ok([{ code: 'x1', _id: 5 }, { code: 'x2' }], [n1]));
  t.same(s.trace().slice(4), ['102 SENDING', '102 SENDING', '104 PENDING', '102 SUCCESS'], 'items, children, then the end');
  t.same(s.frames[4], { code: 'x1', _session: 'S1', _task: 'ITEMS', _id: 102, _status: 'SENDING', _info: { name: 'A' } });
  t.equal(s.frames[6]!._parent, 102, 'a child of an ITEMS task has _parent');
  t.ok('_info' in s.frames[6]! && s.frames[6]!._info === null, 'info: null → _info: null');
  t.same(s.frames[7]!._info, { name: 'A' }, '_info on the terminal frame too');

  s.script(103).finish(err('E_ITEMS_JSON'));
  t.same(s.frames.at(-1), { _session: 'S1', _task: 'ITEMS', _id: 103, _status: 'ERROR', _error: 'E_ITEMS_JSON', _params: params });
  t.notOk(s.done(), 'task 104 still runs');

  s.script(104).start();
  s.script(104).finish(ok([{ code: 'y' }]));
  t.same(s.trace().slice(-3), ['104 SENDING', '104 SUCCESS', 'SESSION SUCCESS']);
  t.equal(s.frames.at(-2)!._parent, 102);
  t.same(s.closes, [{ code: 1000, reason: '' }], 'SUCCESS even though an items task failed');
  t.same(s.started, [101, 102, 103, 104]);
  t.notMatch(JSON.stringify(s.frames), /secret/, 'no params or apikey in any frame');
  checkEnd(t, s);
});

t.test('zero suppliers: SESSION SUCCESS at once', async (t) => {
  const s = session();
  s.request();
  s.script(101).start();
  s.script(101).finish(ok([], []));
  t.same(s.trace(), ['101 PENDING', '101 SUCCESS', 'SESSION SUCCESS']);
  t.same(s.closes, [{ code: 1000, reason: '' }]);
  checkEnd(t, s);
});

t.test('suppliers failure: SESSION ERROR with that code, close 1000', async (t) => {
  for (const code of ['E_SUPPLIERS_JSON', 'E_SUPPLIERS_RESPONSE', 'E_SCRIPT_TIMEOUT', 'E_SCRIPT_ERROR'] as const) {
    const s = session();
    s.request();
    s.script(101).start();
    s.script(101).finish(err(code));
    t.same(s.trace(), ['101 PENDING', `101 ERROR ${code}`, `SESSION ERROR ${code}`], code);
    t.same(s.frames.at(-1)!._params, params, 'the SESSION frame echoes _params');
    t.same(s.closes, [{ code: 1000, reason: code }]);
    checkEnd(t, s);
  }
  // A script that could not start reports FINISHED without STARTED.
  const s = session();
  s.request();
  s.script(101).finish(err('E_SCRIPT_START'));
  t.same(s.trace(), ['101 PENDING', '101 ERROR E_SCRIPT_START', 'SESSION ERROR E_SCRIPT_START']);
  t.same(s.started, []);
  checkEnd(t, s);
});

t.test('session timeout: queued → E_SCRIPT_CANCELLED, running → E_SESSION_TIMEOUT, close 4408', async (t) => {
  const s = session({ sessionTimeoutMs: 50 });
  s.request();
  s.script(101).start();
  s.script(101).finish(ok([], [{ class: 'a' }, { class: 'b' }, { class: 'c' }]));
  s.script(102).start();
  s.script(102).finish(ok([{ code: 'done' }]));
  s.script(103).start();
  t.ok(await waitFor(() => s.closes.length > 0, 2000, 5), 'the session timed out');
  t.same(s.trace(), [
    '101 PENDING',
    '102 PENDING',
    '103 PENDING',
    '104 PENDING',
    '101 SUCCESS',
    '102 SENDING',
    '102 SUCCESS',
    // SPEC 3.6 order: queued ones removed, then running ones killed, then the SESSION frame.
    '104 ERROR E_SCRIPT_CANCELLED',
    '103 ERROR E_SESSION_TIMEOUT',
    'SESSION ERROR E_SESSION_TIMEOUT',
  ]);
  t.same(s.closes, [{ code: 4408, reason: 'E_SESSION_TIMEOUT' }]);
  t.ok(s.script(103).cleanedUp, 'the running script was stopped (killed)');
  t.ok(s.script(104).cleanedUp, 'the queued script was stopped (dropped)');
  const before = s.frames.length;
  s.script(103).finish(ok([{ code: 'late' }]));
  t.equal(s.frames.length, before, 'a late result after the end sends nothing');
  checkEnd(t, s);
});

t.test('no request within the request timeout: one SESSION E_SESSION_TIMEOUT frame, close 4408', async (t) => {
  const clock = new SimulatedClock();
  const s = session({ requestTimeoutMs: 300 }, clock);
  clock.increment(299);
  t.same(s.trace(), [], 'nothing before the timeout');
  clock.increment(1);
  t.same(s.frames, [{ _session: 'S1', _task: 'SESSION', _status: 'ERROR', _error: 'E_SESSION_TIMEOUT' }], 'no _params: no request was parsed');
  t.same(s.closes, [{ code: 4408, reason: 'E_SESSION_TIMEOUT' }]);
  t.equal(s.state(), 'requestTimedOut');
  t.equal(s.actor.getSnapshot().context.error, 'E_SESSION_TIMEOUT', 'the session ends with that error (stats, log)');
  t.same(s.scripts.size, 0, 'no script was started');
  checkEnd(t, s);
});

t.test('a request in time cancels the request timeout; the search runs on the session timeout', async (t) => {
  const clock = new SimulatedClock();
  const s = session({ requestTimeoutMs: 300, sessionTimeoutMs: 1000 }, clock);
  clock.increment(299);
  s.request();
  clock.increment(500);
  t.same(s.trace(), ['101 PENDING'], 'no request-timeout frame after the request');
  s.script(101).start();
  s.script(101).finish(ok([], []));
  t.same(s.trace(), ['101 PENDING', '101 SUCCESS', 'SESSION SUCCESS']);
  t.same(s.closes, [{ code: 1000, reason: '' }]);
  checkEnd(t, s);
});

t.test('suppliers-input=params: the suppliers script gets {"params": request}; items scripts the supplier as it is', async (t) => {
  const s = session({ suppliersInput: 'params' });
  s.request();
  t.same(JSON.parse(s.script(101).input.stdin), { params: request });
  s.script(101).start();
  s.script(101).finish(ok([], [{ class: 'CManRossko', params: { login: 'l' } }]));
  t.same(JSON.parse(s.script(102).input.stdin), { class: 'CManRossko', params: { login: 'l' } }, 'unchanged for items');
  s.script(102).start();
  s.script(102).finish(ok([{ code: 'x' }]));
  checkEnd(t, s);
});

t.test('session timeout while the suppliers script runs', async (t) => {
  const s = session({ sessionTimeoutMs: 30 });
  s.request();
  s.script(101).start();
  t.ok(await waitFor(() => s.done(), 2000, 5));
  t.same(s.trace(), ['101 PENDING', '101 ERROR E_SESSION_TIMEOUT', 'SESSION ERROR E_SESSION_TIMEOUT']);
  t.same(s.closes, [{ code: 4408, reason: 'E_SESSION_TIMEOUT' }]);
  checkEnd(t, s);
});

t.test('CLOSED ends open tasks and stops the scripts; nothing is closed by us', async (t) => {
  const s = session();
  s.request();
  s.script(101).start();
  s.script(101).finish(ok([], [{ class: 'a' }, { class: 'b' }]));
  s.script(102).start();
  s.actor.send({ type: 'CLOSED' });
  t.ok(s.done());
  t.same(s.trace().slice(-2), ['103 ERROR E_SCRIPT_CANCELLED', '102 ERROR E_SESSION_CLOSED'], 'every task still ends (for /stats)');
  t.notOk(s.frames.some((f) => f._task === 'SESSION'), 'no SESSION frame: the browser is gone');
  t.same(s.closes, []);
  t.equal(s.actor.getSnapshot().context.error, 'E_SESSION_CLOSED');
  t.ok(s.script(102).cleanedUp && s.script(103).cleanedUp);
  t.same(invariantViolations(s.frames), []);
  t.same(s.errors, []);

  const idle = session();
  idle.actor.send({ type: 'CLOSED' });
  t.ok(idle.done(), 'closing before any request ends the session too');
  t.same(idle.frames, []);
});

t.test('SHUTDOWN: running → E_SERVER_SHUTDOWN, queued → cancelled, SESSION ERROR, close 1001', async (t) => {
  const s = session();
  s.request();
  s.script(101).start();
  s.script(101).finish(ok([], [{ class: 'a' }, { class: 'b' }]));
  s.script(102).start();
  s.actor.send({ type: 'SHUTDOWN' });
  t.same(s.trace().slice(-3), ['103 ERROR E_SCRIPT_CANCELLED', '102 ERROR E_SERVER_SHUTDOWN', 'SESSION ERROR E_SERVER_SHUTDOWN']);
  t.same(s.closes, [{ code: 1001, reason: 'E_SERVER_SHUTDOWN' }]);
  checkEnd(t, s);

  const idle = session();
  idle.actor.send({ type: 'SHUTDOWN' });
  t.same(idle.trace(), ['SESSION ERROR E_SERVER_SHUTDOWN']);
  t.same(idle.closes, [{ code: 1001, reason: 'E_SERVER_SHUTDOWN' }]);
  checkEnd(t, idle);
});

t.test('a second request while searching: E_SESSION_REUSED, the search goes on', async (t) => {
  const s = session();
  s.request();
  s.script(101).start();
  s.actor.send({ type: 'REQUEST', request: { ...request, code: 'other' }, params });
  s.actor.send({ type: 'BAD_REQUEST', code: 'E_REQUEST_JSON' });
  t.same(s.trace(), ['101 PENDING', 'SESSION ERROR E_SESSION_REUSED', 'SESSION ERROR E_SESSION_REUSED']);
  t.same(s.closes, [], 'the socket stays open');
  t.same([...s.scripts.keys()], [101], 'no second suppliers task');
  s.script(101).finish(ok([], [{ class: 'a' }]));
  s.script(102).start();
  s.script(102).finish(ok([{ code: 'i' }]));
  t.same(s.trace().slice(-4), ['101 SUCCESS', '102 SENDING', '102 SUCCESS', 'SESSION SUCCESS']);
  t.same(s.closes, [{ code: 1000, reason: '' }]);
  checkEnd(t, s);
});

t.test('a bad first request: SESSION ERROR and close 4400', async (t) => {
  const s = session();
  s.actor.send({ type: 'BAD_REQUEST', code: 'E_REQUEST_JSON' });
  t.same(s.frames, [{ _session: 'S1', _task: 'SESSION', _status: 'ERROR', _error: 'E_REQUEST_JSON' }]);
  t.same(s.closes, [{ code: 4400, reason: 'E_REQUEST_JSON' }]);
  checkEnd(t, s);

  const p = session();
  p.actor.send({ type: 'BAD_REQUEST', code: 'E_ILLEGAL_REQUEST', params: { code: 'x' } });
  t.same(p.frames, [{ _session: 'S1', _task: 'SESSION', _status: 'ERROR', _error: 'E_ILLEGAL_REQUEST', _params: { code: 'x' } }]);
  t.same(p.closes, [{ code: 4400, reason: 'E_ILLEGAL_REQUEST' }]);
  checkEnd(t, p);
});

t.test('taskLimit: tasks over the limit get PENDING then E_SCRIPT_CANCELLED at once', async (t) => {
  const s = session({ taskLimit: 3 });
  s.request();
  s.script(101).start();
  s.script(101).finish(ok([], [{ class: 'a' }, { class: 'b' }, { class: 'c' }, { class: 'd' }]));
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
  t.notOk(s.scripts.has(104) || s.scripts.has(105), 'no script actor for a task over the limit');
  // Nested suppliers count against the same limit.
  s.script(102).start();
  s.script(102).finish(ok([], [{ class: 'e' }]));
  t.same(s.trace().slice(-3), ['106 PENDING', '106 ERROR E_SCRIPT_CANCELLED', '102 SUCCESS']);
  s.script(103).start();
  s.script(103).finish(ok());
  t.same(s.trace().at(-1), 'SESSION SUCCESS');
  checkEnd(t, s);
});

t.test('queue timeout: a task still queued gets E_SCRIPT_CANCELLED, a running one does not', async (t) => {
  const s = session({ queueTimeoutMs: 30 });
  s.request();
  s.script(101).start();
  s.script(101).finish(ok([], [{ class: 'a' }, { class: 'b' }]));
  s.script(102).start();
  t.ok(await waitFor(() => s.trace().includes('103 ERROR E_SCRIPT_CANCELLED'), 2000, 5));
  t.ok(s.script(103).cleanedUp, 'the queued job was dropped');
  t.notOk(s.script(102).cleanedUp, 'the running one goes on');
  await new Promise((r) => setTimeout(r, 40));
  t.notOk(s.trace().some((x) => x.startsWith('102 ERROR')), 'the running task is not cancelled');
  s.script(102).finish(ok([{ code: 'i' }]));
  t.same(s.trace().slice(-3), ['102 SENDING', '102 SUCCESS', 'SESSION SUCCESS']);
  checkEnd(t, s);

  // The suppliers task itself waiting too long ends the session.
  const q = session({ queueTimeoutMs: 30 });
  q.request();
  t.ok(await waitFor(() => q.done(), 2000, 5));
  t.same(q.trace(), ['101 PENDING', '101 ERROR E_SCRIPT_CANCELLED', 'SESSION ERROR E_SCRIPT_CANCELLED']);
  t.same(q.closes, [{ code: 1000, reason: 'E_SCRIPT_CANCELLED' }]);
  checkEnd(t, q);
});

t.test('task ids are unique across sessions (one counter per process)', async (t) => {
  let n = 0;
  const nextTaskId = () => ++n;
  const a = session({ nextTaskId });
  const b = session({ nextTaskId, session: 'S2' });
  a.request();
  b.request();
  t.same([...a.scripts.keys(), ...b.scripts.keys()], [1, 2]);
  a.actor.stop();
  b.actor.stop();
});

// Random drives: whatever the scripts do and whenever the session ends, the invariants hold.
t.test('property: random runs keep the SPEC 3.3 invariants', async (t) => {
  const step = fc.record({
    pick: fc.nat(),
    act: fc.constantFrom('start', 'ok', 'ok', 'ok', 'fail', 'reuse', 'end'),
    items: fc.nat({ max: 2 }),
    nested: fc.nat({ max: 3 }),
    info: fc.constantFrom(undefined, null, 'i'),
    ending: fc.constantFrom('CLOSED', 'SHUTDOWN') as fc.Arbitrary<'CLOSED' | 'SHUTDOWN'>,
  });
  let runs = 0;
  let nested = 0;
  let items = 0;
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), fc.integer({ min: 1, max: 12 }), (steps, taskLimit) => {
      runs++;
      const s = session({ taskLimit });
      s.request();
      for (const st of steps) {
        if (s.done()) break;
        const open = [...s.actor.getSnapshot().context.open.values()];
        const task = open[st.pick % Math.max(open.length, 1)];
        if (st.act === 'reuse') s.request();
        else if (st.act === 'end') s.actor.send({ type: st.ending });
        else if (task && st.act === 'start') s.script(task.id).start();
        else if (task && st.act === 'fail') s.script(task.id).finish(err('E_SCRIPT_ERROR'));
        else if (task) {
          const suppliers = Array.from({ length: st.nested }, (_, k): JsonObject => (st.info === undefined ? { k } : { k, info: st.info }));
          s.script(task.id).finish(ok(Array.from({ length: st.items }, (_, k) => ({ k })), suppliers));
        }
      }
      if (!s.done()) s.actor.send({ type: 'SHUTDOWN' });
      const bad = invariantViolations(s.frames);
      if (bad.length > 0 || s.errors.length > 0 || !s.done() || [...s.scripts.values()].some((x) => !x.cleanedUp)) {
        throw new Error(`${bad.join('; ')} errors=${s.errors.length} trace=${s.trace().join(', ')}`);
      }
      // Every task frame of a nested task names an ITEMS parent that exists in this session.
      const ids = new Set(s.frames.map((f) => f._id));
      if (s.frames.some((f) => f._parent !== undefined && !ids.has(f._parent))) throw new Error('dangling _parent');
      nested += s.frames.filter((f) => f._parent !== undefined).length;
      items += s.frames.filter((f) => f._status === 'SENDING').length;
    }),
    { numRuns: 300 },
  );
  t.equal(runs >= 300, true, `${runs} random runs`);
  t.ok(nested > 0 && items > 0, `the runs covered nested tasks (${nested} frames) and items (${items})`);
});
