// Every demo scenario (docs/scripts.md, The demo scripts) end to end: a real server, real
// WebSockets, real php running the demo scripts, with each task's frames, statuses, error codes,
// the final SESSION frame and the close code checked (docs/protocol.md, Frames to Close codes),
// plus request validation (Request) and what the scripts receive on stdin and in their environment
// (Suppliers step, Items step; docs/scripts.md), through fixture scripts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import {
  type AnyFrame,
  type SearchResult,
  type TestServer,
  FIXTURES,
  demoRequest,
  invariantViolations,
  search,
  startServer,
  waitFor,
} from './helpers/harness.js';
import {
  type TaskView,
  demoScript,
  finalFrames,
  fixtureRequest,
  fixtureScript,
  killLeftovers,
  leftovers,
  marker,
  taskViews,
} from './helpers/e2e.js';

const MARK = marker('scenarios');
const PARAMS = { code: '', brand: 'ctr', analog: 1 }; // `_params` of a demo request, code filled in
const servers: TestServer[] = [];
const allSearches: SearchResult[] = [];

t.teardown(async () => {
  await Promise.all(servers.map((s) => s.close()));
  killLeftovers(MARK);
});

async function server(overrides: Record<string, string | number> = {}): Promise<TestServer> {
  const srv = await startServer({
    'aggregator.script.suppliers': demoScript('suppliers', MARK),
    'aggregator.script.items': demoScript('items', MARK),
    'aggregator.timeout.script': 2,
    ...overrides,
  });
  servers.push(srv);
  return srv;
}

/** What every search must satisfy, whatever its scenario (one assertion per rule, not per frame). */
function checkCommon(t: Test, res: SearchResult, code: string): void {
  allSearches.push(res);
  const { frames } = res;
  t.same(invariantViolations(frames), [], 'the frame invariants hold (docs/protocol.md, Order and invariants)');
  t.ok(frames.length > 0, 'frames were sent');
  const session = frames[0]?._session;
  t.ok(typeof session === 'string' && session !== '', '_session is a non-empty string');
  t.ok(frames.every((f) => f._session === session), 'every frame carries the same _session');
  const text = JSON.stringify(frames);
  t.notOk(text.includes('secret'), 'neither the apikey nor supplier params reach the browser');
  t.notOk(text.includes('"apikey"'), 'no apikey field in any frame');
  const bad: string[] = [];
  const params = JSON.stringify({ ...PARAMS, code });
  frames.forEach((f, i) => {
    const where = `frame ${i} (${f._task} ${f._status})`;
    if (f._status === 'ERROR' && JSON.stringify(f._params) !== params) bad.push(`${where}: _params ${JSON.stringify(f._params)}`);
    if (f._status !== 'ERROR' && ('_params' in f || '_error' in f)) bad.push(`${where}: _params or _error on a non-ERROR frame`);
    if (f._task === 'SUPPLIERS' && ('_info' in f || '_parent' in f)) bad.push(`${where}: _info or _parent on SUPPLIERS`);
    if (f._error === 'E_UNKNOWN' || f._error === 'E_SESSION_CLOSED') bad.push(`${where}: ${f._error} must never be sent`);
  });
  for (const task of taskViews(frames).filter((v) => v.kind === 'ITEMS')) {
    // The demo supplier's info is {"supplier": <class>}; every frame of the task repeats it.
    const info = JSON.stringify(task.info);
    if (typeof (task.info as { supplier?: unknown } | undefined)?.supplier !== 'string') bad.push(`task ${task.id}: no _info`);
    if (!task.frames.every((f) => JSON.stringify(f._info) === info)) bad.push(`task ${task.id}: _info differs between frames`);
    if (!task.items.every((f) => f.supplier === (task.info as { supplier: string }).supplier)) bad.push(`task ${task.id}: foreign items`);
    if (!task.frames.every((f) => f._parent === task.parent)) bad.push(`task ${task.id}: _parent differs between frames`);
  }
  t.same(bad, [], '_params on every ERROR frame only; _info on every ITEMS frame; _parent constant per task');
}

const classOf = (task: TaskView) => (task.info as { supplier: string }).supplier;

/** One line per ITEMS task: "[parent>]class STATUS[ code] items", sorted. */
function summary(frames: AnyFrame[]): string[] {
  const views = taskViews(frames);
  const byId = new Map(views.map((v) => [v.id, v]));
  return views
    .filter((v) => v.kind === 'ITEMS')
    .map((v) => {
      const parent = v.parent === undefined ? '' : `${classOf(byId.get(v.parent)!)}>`;
      return `${parent}${classOf(v)} ${v.status ?? 'OPEN'}${v.error ? ` ${v.error}` : ''} ${v.items.length}`;
    })
    .sort();
}

function suppliersTask(t: Test, frames: AnyFrame[]): TaskView {
  const sup = taskViews(frames).filter((v) => v.kind === 'SUPPLIERS');
  t.equal(sup.length, 1, 'exactly one SUPPLIERS task');
  t.equal(sup[0]?.frames[0], frames[0], 'the first frame is the SUPPLIERS PENDING');
  return sup[0]!;
}

interface Scenario {
  items: string[];
  sending: number;
  /** Suppliers step and session end: 'SUCCESS' or an error code. */
  end: string;
}

// The demo scenarios (docs/scripts.md) with the demo scripts and a 0.5 s script timeout.
const QUICK: Record<string, Scenario> = {
  normal: { items: ['normal-1 SUCCESS 3', 'normal-2 SUCCESS 3', 'normal-3 SUCCESS 3'], sending: 9, end: 'SUCCESS' },
  analog: {
    items: ['analog-3 SUCCESS 3', 'analog-3>normal-1 SUCCESS 3', 'analog-3>normal-2 SUCCESS 3', 'normal-1 SUCCESS 3', 'normal-2 SUCCESS 3'],
    sending: 15,
    end: 'SUCCESS',
  },
  mixed: {
    items: [
      'analog-2 SUCCESS 3',
      'analog-2>normal-1 SUCCESS 3',
      'analog-2>normal-2 SUCCESS 3',
      'badjson-5 ERROR E_ITEMS_JSON 0',
      'badresponse-6 ERROR E_ITEMS_RESPONSE 0',
      'error-3 ERROR E_SCRIPT_ERROR 0',
      'normal-1 SUCCESS 3',
      'timeout-4 ERROR E_SCRIPT_TIMEOUT 0',
    ],
    sending: 12,
    end: 'SUCCESS',
  },
  emptySuppliers: { items: [], sending: 0, end: 'SUCCESS' },
  suppliersTimeout: { items: [], sending: 0, end: 'E_SCRIPT_TIMEOUT' },
  suppliersError: { items: [], sending: 0, end: 'E_SCRIPT_ERROR' },
  suppliersNotJson: { items: [], sending: 0, end: 'E_SUPPLIERS_JSON' },
  suppliersBadResponse: { items: [], sending: 0, end: 'E_SUPPLIERS_RESPONSE' },
  emptyItems: { items: ['empty-1 SUCCESS 0', 'empty-2 SUCCESS 0', 'empty-3 SUCCESS 0'], sending: 0, end: 'SUCCESS' },
  itemsTimeout: {
    items: ['timeout-1 ERROR E_SCRIPT_TIMEOUT 0', 'timeout-2 ERROR E_SCRIPT_TIMEOUT 0', 'timeout-3 ERROR E_SCRIPT_TIMEOUT 0'],
    sending: 0,
    end: 'SUCCESS',
  },
  itemsError: { items: ['error-1 ERROR E_SCRIPT_ERROR 0', 'error-2 ERROR E_SCRIPT_ERROR 0'], sending: 0, end: 'SUCCESS' },
  itemsBadJson: { items: ['badjson-1 ERROR E_ITEMS_JSON 0', 'badjson-2 ERROR E_ITEMS_JSON 0'], sending: 0, end: 'SUCCESS' },
  itemsBadResponse: {
    items: ['badresponse-1 ERROR E_ITEMS_RESPONSE 0', 'badresponse-2 ERROR E_ITEMS_RESPONSE 0'],
    sending: 0,
    end: 'SUCCESS',
  },
};

t.test('the demo scenarios that end on their own', async (t) => {
  // A 2 s script budget and 10 scripts at once: php gets enough CPU even on a busy 2-core machine.
  const srv = await server({ 'aggregator.pool.executor': 10, 'aggregator.timeout.script': 2, 'aggregator.timeout.session': 10 });
  const names = Object.keys(QUICK);
  // All at once: the scenarios share the pool, as on the demo page's "Send All Requests".
  const results = await Promise.all(names.map((code) => search(srv.wsBase, demoRequest(code), { timeoutMs: 12000 })));
  for (const [i, code] of names.entries()) {
    const res = results[i]!;
    const want = QUICK[code]!;
    await t.test(code, async (t) => {
      checkCommon(t, res, code);
      const sup = suppliersTask(t, res.frames);
      const failed = want.end !== 'SUCCESS';
      t.equal(sup.status, failed ? 'ERROR' : 'SUCCESS', 'SUPPLIERS status');
      t.equal(sup.error, failed ? want.end : undefined, 'SUPPLIERS error code');
      t.same(summary(res.frames), want.items, 'ITEMS tasks: supplier, status, error code, items');
      t.equal(res.frames.filter((f) => f._status === 'SENDING').length, want.sending, 'number of SENDING frames');
      // Children of the suppliers step are queued before its end (docs/protocol.md, Order and
      // invariants).
      for (const task of taskViews(res.frames).filter((v) => v.kind === 'ITEMS' && v.parent === undefined))
        t.ok(task.first < sup.last, `ITEMS task ${task.id} PENDING before the SUPPLIERS end`);
      const last = res.frames.at(-1)!;
      t.same(finalFrames(res.frames), [last], 'exactly one final SESSION frame, the last one');
      t.equal(last._task, 'SESSION');
      t.notOk('_id' in last, 'the SESSION frame has no _id');
      t.equal(last._status, failed ? 'ERROR' : 'SUCCESS', 'SESSION status');
      t.equal(last._error, failed ? want.end : undefined, 'SESSION error code');
      t.equal(res.closeCode, 1000, 'close code 1000');
    });
  }
});

t.test('script stderr is logged at DEBUG with the task id; no secret reaches the log', async (t) => {
  const srv = servers[0]!;
  const res = allSearches.find((r) => r.frames.some((f) => (f._info as { supplier?: string } | undefined)?.supplier === 'error-1'));
  const task = res && taskViews(res.frames).find((v) => v.kind === 'ITEMS' && classOf(v) === 'error-1');
  if (!task) return t.fail('the itemsError search ran');
  const file = path.join(srv.logDir, 'aggregator.log');
  const read = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
  t.ok(await waitFor(() => read().includes('failed on purpose (error-1)'), 3000), 'the stderr text is in the log');
  const lines = read()
    .split('\n')
    .filter((l) => l.includes('failed on purpose (error-1)'))
    .map((l) => JSON.parse(l) as { level: number; task?: number });
  t.ok(lines.some((l) => l.level === 20 && l.task === task.id), `logged at DEBUG (20) with task ${task.id}`);
  t.notOk(read().includes('secret'), 'neither apikey nor supplier params in the log');
});

t.test('analog children carry _parent and are queued before the parent ends', async (t) => {
  const res = allSearches.find((r) => r.frames.some((f) => (f._info as { supplier?: string } | undefined)?.supplier === 'analog-3'));
  if (!res) return t.fail('the analog search ran');
  const views = taskViews(res.frames);
  const parent = views.find((v) => v.kind === 'ITEMS' && classOf(v) === 'analog-3')!;
  const children = views.filter((v) => v.parent !== undefined);
  t.equal(children.length, 2, 'two children');
  for (const child of children) {
    t.equal(child.parent, parent.id, "the child's _parent is the analog task's _id");
    t.ok(child.first < parent.last, 'child PENDING before the parent SUCCESS');
    t.ok(res.frames.indexOf(parent.items.at(-1)!) < child.first, "child PENDING after the parent's items");
  }
  // The parent's frames in order: PENDING, 3 SENDING, (children's PENDING), SUCCESS.
  t.same(parent.frames.map((f) => f._status), ['PENDING', 'SENDING', 'SENDING', 'SENDING', 'SUCCESS']);
});

t.test('task ids are positive integers unique in the process, session ids unique', async (t) => {
  const sessions = allSearches.map((r) => r.frames[0]?._session);
  t.equal(new Set(sessions).size, sessions.length, 'one session id per search');
  const owner = new Map<number, string>();
  let clash = 0;
  for (const r of allSearches)
    for (const f of r.frames) {
      if (typeof f._id !== 'number') continue;
      const was = owner.get(f._id);
      if (was !== undefined && was !== f._session) clash++;
      owner.set(f._id, f._session);
    }
  t.equal(clash, 0, 'no task id is used by two sessions');
  t.ok([...owner.keys()].every((id) => Number.isInteger(id) && id > 0));
});

t.test('sessionTimeout: queued tasks cancelled, running ones E_SESSION_TIMEOUT, close 4408', async (t) => {
  // A small pool keeps this light; 2000 hanging suppliers still far outlast the session.
  const srv = await server({ 'aggregator.pool.executor': 4, 'aggregator.timeout.script': 0.8, 'aggregator.timeout.session': 2.5 });
  const res = await search(srv.wsBase, demoRequest('sessionTimeout'), { timeoutMs: 12000 });
  checkCommon(t, res, 'sessionTimeout');
  const views = taskViews(res.frames);
  const sup = suppliersTask(t, res.frames);
  t.equal(sup.status, 'SUCCESS');
  const items = views.filter((v) => v.kind === 'ITEMS');
  t.equal(items.length, 2001, 'normal-1 and 2000 timeout-N tasks');
  t.ok(items.every((v) => v.first < sup.last), 'all 2001 PENDING frames before the SUPPLIERS end');
  // normal-1 is first in the queue; it succeeds unless a very busy machine kept it running
  // until the session ended (2000 task actors take a moment to create).
  t.match(summary(res.frames).filter((s) => s.startsWith('normal')), [/^normal-1 (SUCCESS 3|ERROR E_SESSION_TIMEOUT 0)$/]);
  const hanging = items.filter((v) => classOf(v).startsWith('timeout-'));
  t.equal(hanging.length, 2000);
  const count = (code: string) => hanging.filter((v) => v.error === code).length;
  const timedOut = count('E_SCRIPT_TIMEOUT');
  const killed = count('E_SESSION_TIMEOUT');
  const cancelled = count('E_SCRIPT_CANCELLED');
  t.equal(timedOut + killed + cancelled, 2000, 'every timeout-N task ends with one of the three codes');
  t.comment(`${timedOut} timed out on their own, ${killed} killed by the session timeout, ${cancelled} cancelled`);
  t.ok(killed >= 1 && killed <= 4, `the running ones (at most the pool of 4) get E_SESSION_TIMEOUT (${killed})`);
  t.ok(hanging.filter((v) => v.error === 'E_SCRIPT_CANCELLED').every((v) => v.frames.length === 2), 'a cancelled task: PENDING, then ERROR');
  t.ok(cancelled > 1000, `the queued ones get E_SCRIPT_CANCELLED (${cancelled})`);
  // The order of docs/protocol.md, Timeouts and how a search ends: queued → cancelled, then
  // running → E_SESSION_TIMEOUT, then SESSION, then close.
  const lastCancel = Math.max(...hanging.filter((v) => v.error === 'E_SCRIPT_CANCELLED').map((v) => v.last));
  const firstKilled = Math.min(...items.filter((v) => v.error === 'E_SESSION_TIMEOUT').map((v) => v.last));
  t.ok(lastCancel < firstKilled, 'the cancelled frames come before the E_SESSION_TIMEOUT frames');
  t.equal(res.frames.length - 1, Math.max(...items.map((v) => v.last)) + 1, 'the SESSION frame follows them at once');
  t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'ERROR', _error: 'E_SESSION_TIMEOUT' });
  t.equal(res.closeCode, 4408);
  t.equal(res.closeReason, 'E_SESSION_TIMEOUT');
  // Not before the timeout; the upper bound is loose, for a busy 2-core machine.
  t.ok(res.ms >= 2400 && res.ms < 10000, `ended by the 2.5 s session timeout (${Math.round(res.ms)} ms)`);
  t.same(await leftovers(MARK), [], 'the killed scripts are gone');
});

t.test('analogLoop: an endless nested search ended by the session timeout', async (t) => {
  const srv = await server({ 'aggregator.timeout.session': 1.5 });
  const res = await search(srv.wsBase, demoRequest('analogLoop'), { timeoutMs: 12000 });
  checkCommon(t, res, 'analogLoop');
  const loops = taskViews(res.frames).filter((v) => v.kind === 'ITEMS');
  t.ok(loops.length >= 3, `the loop went round several times (${loops.length} tasks)`);
  t.ok(loops.every((v) => classOf(v) === 'loop-1'), 'every task is loop-1');
  t.equal(loops[0]?.parent, undefined, 'the first loop task comes from the suppliers step');
  for (let i = 1; i < loops.length; i++) t.equal(loops[i]!.parent, loops[i - 1]!.id, `loop task ${i} is the child of the one before`);
  const ended = loops.slice(0, -1);
  t.ok(ended.every((v) => v.status === 'SUCCESS' && v.items.length === 1), 'each finished round sent 1 item');
  t.match(loops.at(-1), { status: 'ERROR', error: /^E_(SESSION_TIMEOUT|SCRIPT_CANCELLED)$/ }, 'the open round is ended by the timeout');
  t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'ERROR', _error: 'E_SESSION_TIMEOUT' });
  t.equal(res.closeCode, 4408);
  t.equal(res.closeReason, 'E_SESSION_TIMEOUT');
});

t.test('request validation (docs/protocol.md, Request): one SESSION ERROR frame, close 4400 with the code', async (t) => {
  const srv = await server();
  const bin = Buffer.from(JSON.stringify(demoRequest('normal')));
  const cases: [string, string | undefined, string, Record<string, unknown> | undefined][] = [
    // name, request text (undefined = the binary frame), expected code, expected _params
    ['not JSON', '{"code":"normal",', 'E_REQUEST_JSON', undefined],
    ['empty text', '', 'E_REQUEST_JSON', undefined],
    ['binary frame', undefined, 'E_REQUEST_JSON', undefined],
    ['an array', '[1,2]', 'E_ILLEGAL_REQUEST', undefined],
    ['a string', '"normal"', 'E_ILLEGAL_REQUEST', undefined],
    ['a number', '42', 'E_ILLEGAL_REQUEST', undefined],
    ['null', 'null', 'E_ILLEGAL_REQUEST', undefined],
    ['an empty object', '{}', 'E_ILLEGAL_REQUEST', {}],
    ['analog missing', JSON.stringify({ code: 'normal', brand: 'ctr', apikey: 'secret-k' }), 'E_ILLEGAL_REQUEST', { code: 'normal', brand: 'ctr' }],
    ['apikey missing', JSON.stringify({ code: 'normal', brand: 'ctr', analog: 1 }), 'E_ILLEGAL_REQUEST', { code: 'normal', brand: 'ctr', analog: 1 }],
    ['analog null', JSON.stringify({ ...demoRequest('normal'), analog: null }), 'E_ILLEGAL_REQUEST', undefined],
    ['brand an object', JSON.stringify({ ...demoRequest('normal'), brand: { a: 1 } }), 'E_ILLEGAL_REQUEST', undefined],
    ['code an array', JSON.stringify({ ...demoRequest('normal'), code: ['normal'] }), 'E_ILLEGAL_REQUEST', undefined],
    ['apikey an empty array', JSON.stringify({ ...demoRequest('normal'), apikey: [] }), 'E_ILLEGAL_REQUEST', undefined],
  ];
  const results = await Promise.all(
    cases.map(([, text]) =>
      text === undefined
        ? search(srv.wsBase, undefined, { onOpen: (ws) => ws.send(bin, { binary: true }), timeoutMs: 5000 })
        : search(srv.wsBase, text, { timeoutMs: 5000 }),
    ),
  );
  for (const [i, [name, , code, params]] of cases.entries()) {
    const res = results[i]!;
    t.equal(res.frames.length, 1, `${name}: exactly one frame`);
    const f = res.frames[0]!;
    t.match(f, { _task: 'SESSION', _status: 'ERROR', _error: code }, `${name}: SESSION ERROR ${code}`);
    t.ok(typeof f._session === 'string' && !('_id' in f), `${name}: _session, no _id`);
    if (params) t.same(f._params, params, `${name}: _params holds the faulty fields it had`);
    t.notOk(JSON.stringify(f).includes('secret'), `${name}: never the apikey`);
    t.equal(res.closeCode, 4400, `${name}: close 4400`);
    t.equal(res.closeReason, code, `${name}: the reason is the code`);
  }
  const stats = srv.agg.stats.toJSON();
  t.equal(stats.taskTotal, 0, 'no script ran for a rejected request');
  t.equal(stats.sessionFinished, cases.length, 'each rejected request was a finished session');
});

t.test('scalars of any type are accepted as request fields', async (t) => {
  const srv = await server();
  const res = await search(srv.wsBase, { code: 3310, brand: '', apikey: 111111, analog: true }, { timeoutMs: 5000 });
  t.same(invariantViolations(res.frames), []);
  t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' }, 'an unknown numeric code searches like normal');
  t.equal(res.frames.filter((f) => f._status === 'SENDING').length, 9);
  t.equal(res.closeCode, 1000);
});

t.test('what the scripts receive: whitelisted request, supplier as returned, env (docs/protocol.md, docs/scripts.md)', async (t) => {
  const srv = await server({
    'aggregator.script.suppliers': fixtureScript('suppliers-from-code.php', MARK),
    'aggregator.script.items': fixtureScript('items-do.php', MARK),
  });
  const supplier = {
    report: true,
    name: 'r',
    params: { login: 'l', password: 'secret-pw', nested: [1, { a: null }], empty: {} },
    'ü€': 'ß "quoted" / slash',
    z: 1.5,
    list: [],
  };
  const request = fixtureRequest([supplier]);
  // Extra fields, including ones that look like reserved or prototype names, must be dropped.
  const text = JSON.stringify({ ...request, extra: 'injected', _session: 'x', constructor: 1 }).replace(/}$/, ',"__proto__":{"polluted":1}}');
  const res = await search(srv.wsBase, text, { timeoutMs: 5000 });
  t.same(invariantViolations(res.frames), []);
  t.notOk(JSON.stringify(res.frames).includes('secret-pw'), 'supplier params never reach the browser');
  t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' });
  const views = taskViews(res.frames);
  const sup = views.find((v) => v.kind === 'SUPPLIERS')!;
  const items = views.find((v) => v.kind === 'ITEMS')!;
  const info = items.info as { stdin: string; session: string; task: string };
  t.ok(items.frames.every((f) => JSON.stringify(f._info) === JSON.stringify(info)), '_info on every ITEMS frame');

  const supStdin = Buffer.from(info.stdin, 'base64').toString('utf8');
  t.ok(supStdin.endsWith('\n') && supStdin.indexOf('\n') === supStdin.length - 1, 'suppliers stdin: one line ending in \\n');
  t.same(JSON.parse(supStdin), { code: request.code, brand: 'ctr', apikey: request.apikey, analog: 0 }, 'only the whitelisted fields');
  t.notOk(supStdin.includes('injected') || supStdin.includes('polluted') || supStdin.includes('_session'), 'no extra field reaches the script');
  t.equal(info.session, res.frames[0]?._session, 'suppliers script: AGGREGATOR_SESSION is the _session');
  t.equal(info.task, String(sup.id), 'suppliers script: AGGREGATOR_TASK_ID is the task _id');

  t.equal(items.items.length, 1);
  const item = items.items[0]!;
  const itemStdin = Buffer.from(String(item.stdin), 'base64').toString('utf8');
  // The supplier exactly as the suppliers script returned it (its params included).
  t.equal(itemStdin, `${JSON.stringify({ ...supplier, info })}\n`, 'items stdin: the supplier object as returned, one line + \\n');
  t.equal(item.session, res.frames[0]?._session, 'items script: AGGREGATOR_SESSION');
  t.equal(item.task, String(items.id), 'items script: AGGREGATOR_TASK_ID');
});

t.test('item frames: the item as returned plus reserved fields, which win (docs/protocol.md, Frames)', async (t) => {
  const srv = await server({
    'aggregator.script.suppliers': fixtureScript('suppliers-from-code.php', MARK),
    'aggregator.script.items': fixtureScript('items-do.php', MARK),
  });
  const item = { _session: 'fake', _task: 'FAKE', _id: -5, _status: 'FAKE', _parent: 99, _info: 'fake', code: 'A', n: [1, { b: 'c' }] };
  const res = await search(
    srv.wsBase,
    fixtureRequest([
      { name: 'with-info', info: { shown: true }, items: [item, { code: 'B' }], suppliers: [{ name: 'child', items: [{ code: 'C' }] }] },
      { name: 'no-info', items: [{ code: 'D' }] },
      { name: 'false-info', info: false, items: [] },
    ]),
    { timeoutMs: 5000 },
  );
  t.same(invariantViolations(res.frames), []);
  const views = taskViews(res.frames).filter((v) => v.kind === 'ITEMS');
  const [withInfo, noInfo, falseInfo, child] = views;
  if (!withInfo || !noInfo || !falseInfo || !child) return t.fail('four ITEMS tasks');
  t.ok(falseInfo.frames.every((f) => f._info === false), 'an info field holding false is still echoed');
  const first = withInfo.items[0]!;
  t.match(first, { _session: res.frames[0]?._session, _task: 'ITEMS', _id: withInfo.id, _status: 'SENDING', _info: { shown: true } });
  t.notOk('_parent' in first, "the item's own _parent does not survive on a top-level task");
  t.same({ code: first.code, n: first.n }, { code: 'A', n: [1, { b: 'c' }] }, 'the item fields are kept as returned');
  t.same(withInfo.items.map((f) => f.code), ['A', 'B'], 'items in the script order');
  t.ok(noInfo.frames.every((f) => !('_info' in f)), 'no _info when the supplier has no info field');
  t.equal(child.parent, withInfo.id, 'nested supplier: _parent');
  t.ok(child.frames.every((f) => !('_info' in f)) && child.items[0]?.code === 'C');
});

t.test('suppliers answers that fail validation (docs/protocol.md, Suppliers step)', async (t) => {
  const srv = await server({
    'aggregator.script.suppliers': fixtureScript('suppliers-from-code.php', MARK),
    'aggregator.script.items': fixtureScript('items-do.php', MARK),
  });
  const [notObjects, items] = await Promise.all([
    search(srv.wsBase, fixtureRequest([{ name: 'ok' }, 1]), { timeoutMs: 5000 }),
    search(srv.wsBase, fixtureRequest([{ name: 'bad', items: [{ code: 'A' }, 2] }]), { timeoutMs: 5000 }),
  ]);
  t.same(invariantViolations(notObjects.frames), []);
  t.same(
    notObjects.frames.map((f) => [f._task, f._status, f._error]),
    [
      ['SUPPLIERS', 'PENDING', undefined],
      ['SUPPLIERS', 'ERROR', 'E_SUPPLIERS_RESPONSE'],
      ['SESSION', 'ERROR', 'E_SUPPLIERS_RESPONSE'],
    ],
    'a suppliers element that is not an object: E_SUPPLIERS_RESPONSE, no ITEMS task',
  );
  t.equal(notObjects.closeCode, 1000);
  t.same(invariantViolations(items.frames), []);
  t.same(summaryOf(items.frames), ['ITEMS ERROR E_ITEMS_RESPONSE 0'], 'an items element that is not an object: no items sent at all');
  t.match(items.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' });
});

t.test('aggregator.fields.*: other field names for request, items, suppliers, info, faulty', async (t) => {
  const srv = await server({
    'aggregator.script.suppliers': `${fixtureScript('suppliers-from-code.php', MARK)} vendors`,
    'aggregator.script.items': fixtureScript('items-do.php', MARK),
    'aggregator.fields.request': 'code,key',
    'aggregator.fields.faulty': 'code',
    'aggregator.fields.items': 'parts',
    'aggregator.fields.suppliers': 'vendors',
    'aggregator.fields.info': 'label',
  });
  const as = { items: 'parts', suppliers: 'vendors' };
  const code = JSON.stringify([
    { name: 'p', label: 'L', info: 'not this', as, items: [{ a: 1 }], suppliers: [{ name: 'c', as, items: [{ b: 2 }] }] },
    { name: 'q', label: 'Q', items: [{ a: 2 }] }, // answers "items", which is not the items field now
  ]);
  const res = await search(srv.wsBase, { code, key: 'k' }, { timeoutMs: 5000 });
  t.same(invariantViolations(res.frames), []);
  const [p, q, c] = taskViews(res.frames).filter((v) => v.kind === 'ITEMS');
  t.ok(p && p.frames.every((f) => f._info === 'L'), '_info from the label field');
  t.same(p?.items.map((f) => f.a), [1], 'items from the parts field');
  t.equal(c?.parent, p?.id, 'nested suppliers from the vendors field');
  t.same(c?.items.map((f) => f.b), [2]);
  t.match(q, { status: 'ERROR', error: 'E_ITEMS_RESPONSE' }, 'an answer without the parts field');
  t.same(q?.frames.at(-1)?._params, { code }, '_params holds the faulty fields only');
  t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' });
  const missing = await search(srv.wsBase, { code, brand: 'ctr', apikey: 'k', analog: 1 }, { timeoutMs: 5000 });
  t.match(missing.frames, [{ _task: 'SESSION', _error: 'E_ILLEGAL_REQUEST' }], 'the required fields are the configured ones');
  t.equal(missing.closeCode, 4400);
});

t.test('a script command line is split like a shell would, but never run by one (docs/scripts.md)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e dir with spaces '));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const copy = path.join(dir, 'items-do.php');
  fs.copyFileSync(path.join(FIXTURES, 'items-do.php'), copy);
  process.env.E2E_INHERITED = 'from the aggregator';
  t.teardown(() => void delete process.env.E2E_INHERITED);
  const srv = await server({
    'aggregator.script.suppliers': fixtureScript('suppliers-from-code.php', MARK),
    'aggregator.script.items': `/usr/bin/php "${copy}" ${MARK} 'two words' $HOME "a;b" a\\ b`,
  });
  const res = await search(srv.wsBase, fixtureRequest([{ report: true }]), { timeoutMs: 5000 });
  t.same(invariantViolations(res.frames), []);
  const item = res.frames.find((f) => f._status === 'SENDING');
  t.same(item?.argv, [copy, MARK, 'two words', '$HOME', 'a;b', 'a b'], 'quotes and \\ group words; $HOME and ; stay literal');
  t.equal(item?.inherited, 'from the aggregator', 'scripts inherit the environment');
});

function summaryOf(frames: AnyFrame[]): string[] {
  return taskViews(frames)
    .filter((v) => v.kind === 'ITEMS')
    .map((v) => `ITEMS ${v.status ?? 'OPEN'}${v.error ? ` ${v.error}` : ''} ${v.items.length}`);
}

t.test('no php process is left behind', async (t) => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  t.same(await leftovers(MARK), [], `no process carries ${MARK}`);
});
