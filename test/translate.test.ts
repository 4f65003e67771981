// The JSON translation steps (docs/protocol.md: Request, Suppliers step, Items step): request frame
// → whitelisted request and `_params`, request → suppliers stdin, suppliers stdout → suppliers,
// items stdout → items.
import t from 'tap';
import { parseItems, parseRequest, parseSuppliers, stdinLine, suppliersStdin } from '../src/translate.js';

const fields = { request: ['code', 'brand', 'apikey', 'analog'], faulty: ['code', 'brand', 'analog'] };
const good = { code: '3310', brand: 'ctr', apikey: '111111', analog: 1 };

t.test('request: only the whitelisted fields pass, params are the faulty ones', async (t) => {
  const res = parseRequest(JSON.stringify({ ...good, inject: 'x', cmd: { rm: true } }), fields);
  t.same(res, { ok: true, request: good, params: { code: '3310', brand: 'ctr', analog: 1 } });
  if (res.ok) {
    t.same(Object.keys(res.request), ['code', 'brand', 'apikey', 'analog'], 'in the order of the config');
    t.notOk('apikey' in res.params, 'the apikey is never a _param');
  }
});

t.test('request: scalars of every kind are accepted (string, number, boolean)', async (t) => {
  const res = parseRequest(JSON.stringify({ code: '', brand: false, apikey: 0, analog: true }), fields);
  t.ok(res.ok);
  if (res.ok) t.same(res.request, { code: '', brand: false, apikey: 0, analog: true });
});

t.test('request: a __proto__ key is data, never a prototype', async (t) => {
  const raw = '{"__proto__":{"polluted":1},"code":"1","brand":"b","apikey":"k","analog":1,"constructor":{"prototype":{"x":1}}}';
  const withProto = parseRequest(raw, { request: ['__proto__', 'code'], faulty: ['__proto__'] });
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched');
  t.same(withProto, { ok: false, code: 'E_ILLEGAL_REQUEST', params: {} }, 'an object value is not a scalar');

  const scalarProto = parseRequest('{"__proto__":"p","code":"1"}', { request: ['__proto__', 'code'], faulty: ['__proto__'] });
  t.ok(scalarProto.ok);
  if (scalarProto.ok) {
    t.equal(Object.getPrototypeOf(scalarProto.request), Object.prototype, 'prototype not replaced');
    t.ok(Object.prototype.hasOwnProperty.call(scalarProto.request, '__proto__'), 'kept as an own field');
    t.equal(JSON.stringify(scalarProto.request), '{"__proto__":"p","code":"1"}', 'and serialised to the script');
    t.equal(JSON.stringify(scalarProto.params), '{"__proto__":"p"}');
  }
  const normal = parseRequest(raw, fields);
  t.ok(normal.ok);
  if (normal.ok) t.same(Object.keys(normal.request), ['code', 'brand', 'apikey', 'analog'], 'extra keys dropped');
  t.equal(({} as Record<string, unknown>).x, undefined);
});

t.test('request: null, object or array in a required field → E_ILLEGAL_REQUEST with the faulty params', async (t) => {
  for (const bad of [null, { a: 1 }, [1], []]) {
    const res = parseRequest(JSON.stringify({ ...good, brand: bad }), fields);
    t.same(res, { ok: false, code: 'E_ILLEGAL_REQUEST', params: { code: '3310', analog: 1 } }, JSON.stringify(bad));
  }
  t.same(parseRequest(JSON.stringify({ code: '1', brand: 'b', analog: 2 }), fields), {
    ok: false,
    code: 'E_ILLEGAL_REQUEST',
    params: { code: '1', brand: 'b', analog: 2 },
  }, 'a missing field (apikey) too; params are still echoed');
});

t.test('request: JSON that is not an object → E_ILLEGAL_REQUEST without params', async (t) => {
  for (const raw of ['[]', '[{"code":"1"}]', '"text"', '42', 'null', 'true']) {
    t.same(parseRequest(raw, fields), { ok: false, code: 'E_ILLEGAL_REQUEST' }, raw);
  }
});

t.test('request: not JSON → E_REQUEST_JSON', async (t) => {
  for (const raw of ['', 'code=1', '{"code":"1",}', '{code:1}', '{"a":1} x', "{'a':1}"]) {
    t.same(parseRequest(raw, fields), { ok: false, code: 'E_REQUEST_JSON' }, JSON.stringify(raw));
  }
  t.ok(parseRequest(`\uFEFF${JSON.stringify(good)}`, fields).ok, 'a UTF-8 BOM is tolerated');
});

t.test('stdinLine: one line of JSON, no newline (the runner adds it)', async (t) => {
  const line = stdinLine({ name: 'multi\nline', u: 'ü', nested: { a: [1, null] } });
  t.notMatch(line, /\n/);
  t.same(JSON.parse(line), { name: 'multi\nline', u: 'ü', nested: { a: [1, null] } });
});

t.test('suppliersStdin: the request, or {"params": request} for the original scripts', async (t) => {
  t.equal(suppliersStdin(good, 'request'), '{"code":"3310","brand":"ctr","apikey":"111111","analog":1}');
  t.equal(suppliersStdin(good, 'params'), '{"params":{"code":"3310","brand":"ctr","apikey":"111111","analog":1}}');
  const parsed = parseRequest(JSON.stringify({ ...good, inject: 'x' }), fields);
  t.ok(parsed.ok);
  if (!parsed.ok) return;
  const wrapped = JSON.parse(suppliersStdin(parsed.request, 'params')) as Record<string, unknown>;
  t.same(Object.keys(wrapped), ['params'], 'params is the only top-level field');
  t.same(wrapped.params, good, 'only the whitelisted fields, as in request mode');
  for (const mode of ['request', 'params'] as const) t.notMatch(suppliersStdin({ code: 'a\nb' }, mode), /\n/, `${mode}: one line`);
  const proto = parseRequest('{"__proto__":"p","code":"1"}', { request: ['__proto__', 'code'], faulty: [] });
  if (proto.ok) t.equal(suppliersStdin(proto.request, 'params'), '{"params":{"__proto__":"p","code":"1"}}', 'a __proto__ field stays data');
});

t.test('suppliers: an array of objects under the configured field', async (t) => {
  const list = [{ class: 'normal-1', params: { login: 'x' }, info: 'a' }, { class: 'normal-2' }];
  t.same(parseSuppliers(JSON.stringify({ suppliers: list, extra: 1 }), 'suppliers'), { ok: true, suppliers: list });
  t.same(parseSuppliers('{"suppliers":[]}', 'suppliers'), { ok: true, suppliers: [] }, 'empty is fine');
  t.same(parseSuppliers('{"list":[{"a":1}]}', 'list'), { ok: true, suppliers: [{ a: 1 }] }, 'custom field name');
  t.same(parseSuppliers('{"suppliers":[{"a":1}]}', 'list'), { ok: false, code: 'E_SUPPLIERS_RESPONSE' }, 'default name ignored when another is configured');
});

t.test('suppliers: not JSON → E_SUPPLIERS_JSON', async (t) => {
  for (const out of ['', 'Fatal error: x', '{"suppliers":[', '\uFFFD{}']) {
    t.same(parseSuppliers(out, 'suppliers'), { ok: false, code: 'E_SUPPLIERS_JSON' }, JSON.stringify(out));
  }
});

t.test('suppliers: JSON without an array of objects → E_SUPPLIERS_RESPONSE', async (t) => {
  for (const out of [
    '{}',
    '[]',
    '[{"class":"a"}]',
    'null',
    '"suppliers"',
    '{"suppliers":null}',
    '{"suppliers":{"class":"a"}}',
    '{"suppliers":"a"}',
    '{"suppliers":[1,2]}',
    '{"suppliers":[{"class":"a"},null]}',
    '{"suppliers":[{"class":"a"},[]]}',
    '{"suppliers":["a"]}',
  ]) {
    t.same(parseSuppliers(out, 'suppliers'), { ok: false, code: 'E_SUPPLIERS_RESPONSE' }, out);
  }
});

const itemFields = { items: 'items', suppliers: 'suppliers' };

t.test('items: items in order, optional nested suppliers', async (t) => {
  const items = [{ code: 'a', price: 1 }, { code: 'b', _status: 'fake' }];
  t.same(parseItems(JSON.stringify({ items }), itemFields), { ok: true, items, suppliers: [] });
  t.same(parseItems(JSON.stringify({ items, suppliers: [{ class: 'normal-1' }] }), itemFields), {
    ok: true,
    items,
    suppliers: [{ class: 'normal-1' }],
  });
  t.same(parseItems('{"items":[],"suppliers":null}', itemFields), { ok: true, items: [], suppliers: [] }, 'null suppliers = none');
  t.same(parseItems('{"items":[],"suppliers":[]}', itemFields), { ok: true, items: [], suppliers: [] });
});

t.test('items: custom field names', async (t) => {
  const custom = { items: 'goods', suppliers: 'more' };
  t.same(parseItems('{"goods":[{"a":1}],"more":[{"b":2}]}', custom), { ok: true, items: [{ a: 1 }], suppliers: [{ b: 2 }] });
  t.same(parseItems('{"items":[{"a":1}]}', custom), { ok: false, code: 'E_ITEMS_RESPONSE' });
  t.same(parseItems('{"goods":[],"suppliers":"ignored: not the configured name"}', custom), { ok: true, items: [], suppliers: [] });
});

t.test('items: not JSON → E_ITEMS_JSON', async (t) => {
  for (const out of ['', 'Warning: x', '{"items":[}']) {
    t.same(parseItems(out, itemFields), { ok: false, code: 'E_ITEMS_JSON' }, JSON.stringify(out));
  }
});

t.test('items: bad items or bad suppliers → E_ITEMS_RESPONSE (and no items at all)', async (t) => {
  for (const out of [
    '{}',
    '[]',
    'null',
    '{"items":null}',
    '{"items":{}}',
    '{"items":[1]}',
    '{"items":[{"a":1},null]}',
    '{"items":[{"a":1},["x"]]}',
    '{"items":[{"a":1}],"suppliers":{}}',
    '{"items":[{"a":1}],"suppliers":"x"}',
    '{"items":[{"a":1}],"suppliers":[1]}',
    '{"items":[{"a":1}],"suppliers":[{"a":1},null]}',
    '{"items":[{"a":1}],"suppliers":false}',
  ]) {
    t.same(parseItems(out, itemFields), { ok: false, code: 'E_ITEMS_RESPONSE' }, out);
  }
});
