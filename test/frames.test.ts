// Frames (docs/protocol.md, Frames): reserved fields, `_info` only when the supplier has one,
// `_parent`, `_params` on errors, and item frames where the reserved fields win over the item's
// own.
import fc from 'fast-check';
import t from 'tap';
import { RESERVED, type TaskMeta, itemFrameText, sessionFrame, taskFrame } from '../src/frames.js';

const plain: TaskMeta = { session: 's1', id: 7, kind: 'ITEMS' };

t.test('task frames carry the reserved fields, nothing else by default', async (t) => {
  t.same(taskFrame(plain, 'PENDING'), { _session: 's1', _task: 'ITEMS', _id: 7, _status: 'PENDING' });
  t.strictSame(Object.keys(taskFrame({ session: 's1', id: 1, kind: 'SUPPLIERS' }, 'SUCCESS')), ['_session', '_task', '_id', '_status']);
});

t.test('errors carry _error and _params (when given)', async (t) => {
  const params = { code: '3310', brand: 'ctr', analog: 1 };
  t.same(taskFrame(plain, 'ERROR', { code: 'E_SCRIPT_TIMEOUT', params }), {
    _session: 's1',
    _task: 'ITEMS',
    _id: 7,
    _status: 'ERROR',
    _error: 'E_SCRIPT_TIMEOUT',
    _params: params,
  });
  const noParams = taskFrame(plain, 'ERROR', { code: 'E_SCRIPT_ERROR' });
  t.equal(noParams._error, 'E_SCRIPT_ERROR');
  t.notOk('_params' in noParams, 'no _params when the request was never parsed');
});

t.test('_info only when the supplier has one; info: null gives _info: null', async (t) => {
  const withInfo: TaskMeta = { ...plain, info: { value: { name: 'Supplier 1', days: 2 } } };
  const nullInfo: TaskMeta = { ...plain, info: { value: null } };
  for (const status of ['PENDING', 'SUCCESS', 'ERROR'] as const) {
    const err = status === 'ERROR' ? { code: 'E_ITEMS_JSON' as const } : undefined;
    t.same(taskFrame(withInfo, status, err)._info, { name: 'Supplier 1', days: 2 }, status);
    const f = taskFrame(nullInfo, status, err);
    t.ok('_info' in f, `${status}: null info is still sent`);
    t.equal(f._info, null);
    t.notOk('_info' in taskFrame(plain, status, err), `${status}: no info field, no _info`);
  }
  t.equal(JSON.parse(itemFrameText({ a: 1 }, nullInfo))._info, null, 'item frames too');
  t.notOk('_info' in JSON.parse(itemFrameText({ a: 1 }, plain)));
});

t.test('_parent on every frame of a nested task', async (t) => {
  const child: TaskMeta = { ...plain, id: 9, parent: 7 };
  t.equal(taskFrame(child, 'PENDING')._parent, 7);
  t.equal(taskFrame(child, 'ERROR', { code: 'E_SCRIPT_ERROR' })._parent, 7);
  t.equal(JSON.parse(itemFrameText({ a: 1 }, child))._parent, 7);
  t.notOk('_parent' in taskFrame(plain, 'PENDING'));
});

t.test('session frames: SUCCESS or ERROR with _error/_params, never an _id', async (t) => {
  t.same(sessionFrame('s1'), { _session: 's1', _task: 'SESSION', _status: 'SUCCESS' });
  t.same(sessionFrame('s1', { code: 'E_SESSION_TIMEOUT', params: { code: 'x' } }), {
    _session: 's1',
    _task: 'SESSION',
    _status: 'ERROR',
    _error: 'E_SESSION_TIMEOUT',
    _params: { code: 'x' },
  });
  t.notOk('_id' in sessionFrame('s1', { code: 'E_REQUEST_JSON' }));
});

t.test('item frames: the item as returned, plus reserved fields that win', async (t) => {
  const meta: TaskMeta = { session: 's2', id: 11, kind: 'ITEMS', info: { value: 'real info' }, parent: 3 };
  const item = {
    code: '3310',
    price: 12.5,
    nested: { deep: [1, 'two'] },
    _session: 'forged',
    _task: 'SESSION',
    _id: 999,
    _status: 'SUCCESS',
    _info: 'forged info',
    _parent: 1,
  };
  const frame = JSON.parse(itemFrameText(item, meta));
  t.same(frame, {
    code: '3310',
    price: 12.5,
    nested: { deep: [1, 'two'] },
    _session: 's2',
    _task: 'ITEMS',
    _id: 11,
    _status: 'SENDING',
    _info: 'real info',
    _parent: 3,
  });
  t.equal(item._id, 999, 'the script result itself is not mutated');
});

t.test("an item's own reserved fields are removed when we do not set them", async (t) => {
  const item: Record<string, unknown> = { name: 'x' };
  for (const name of RESERVED) item[name] = `forged ${name}`;
  const frame = JSON.parse(itemFrameText(item as never, plain));
  t.same(frame, { name: 'x', _session: 's1', _task: 'ITEMS', _id: 7, _status: 'SENDING' });
  for (const name of ['_error', '_params', '_info', '_parent']) t.notOk(name in frame, `${name} removed`);
});

t.test('an item with a __proto__ key stays data', async (t) => {
  const item = JSON.parse('{"__proto__":{"_status":"forged"},"a":1}');
  const text = itemFrameText(item, plain);
  const frame = JSON.parse(text);
  t.equal(frame._status, 'SENDING');
  t.equal(frame.a, 1);
  t.match(text, /"__proto__":\{"_status":"forged"\}/, 'sent as the script returned it');
  t.equal(({} as Record<string, unknown>)._status, undefined, 'Object.prototype untouched');
});

t.test('item frames are byte for byte the item copied with the reserved fields appended', async (t) => {
  // itemFrameText skips the copy for items without reserved fields of their own; this is the
  // copy it stands for (including items that do have some, which take the copying path).
  const copy = (item: Record<string, unknown>, meta: TaskMeta) => {
    const frame: Record<string, unknown> = { ...item };
    for (const name of RESERVED) delete frame[name];
    Object.assign(frame, { _session: meta.session, _task: meta.kind, _id: meta.id, _status: 'SENDING' });
    if (meta.info) frame._info = meta.info.value;
    if (meta.parent !== undefined) frame._parent = meta.parent;
    return JSON.stringify(frame);
  };
  const metas: TaskMeta[] = [plain, { session: 's9', id: 3, kind: 'ITEMS', info: { value: { a: [1] } }, parent: 2 }];
  const key = fc.oneof(fc.string(), fc.constantFrom('0', '12', '__proto__', ...RESERVED));
  fc.assert(
    fc.property(fc.dictionary(key, fc.jsonValue()), fc.constantFrom(...metas), (raw, meta) => {
      const item = JSON.parse(JSON.stringify(raw)) as Record<string, never>; // as a script's JSON parses
      return itemFrameText(item, meta) === copy(item, meta);
    }),
    { seed: 5, numRuns: 500 },
  );
  t.equal(itemFrameText({}, plain), '{"_session":"s1","_task":"ITEMS","_id":7,"_status":"SENDING"}', 'an empty item');
});
