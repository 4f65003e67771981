// src/json.ts: parsing that tolerates a BOM, and the nesting limit on what scripts answer
// (deeper answers could not be sent on: JSON.stringify overflows near 4,000 levels).
import t from 'tap';
import { MAX_DEPTH, nestsDeeper, parseJson } from '../src/json.js';
import { parseItems, parseSuppliers } from '../src/translate.js';

const nest = (n: number, leaf = '1') => '['.repeat(n) + leaf + ']'.repeat(n);

t.test('parseJson: JSON or undefined, a leading BOM tolerated, any depth', async (t) => {
  t.same(parseJson('\ufeff{"a":1}'), { value: { a: 1 } });
  t.equal(parseJson('{"a":'), undefined);
  t.ok(parseJson(nest(100_000)), 'V8 parses 100,000 levels without a stack of its own');
});

t.test('nestsDeeper counts arrays and objects, not scalars', async (t) => {
  t.notOk(nestsDeeper(JSON.parse(nest(3)), 3), 'exactly the limit');
  t.ok(nestsDeeper(JSON.parse(nest(4)), 3), 'one level more');
  t.notOk(nestsDeeper(JSON.parse('{"a":{"b":"x"}}'), 2));
  t.ok(nestsDeeper(JSON.parse('{"a":{"b":{}}}'), 2));
  t.ok(nestsDeeper(JSON.parse(`[1,{"a":[2,3]},${nest(5)}]`), 5), 'found beside shallow siblings');
  t.notOk(nestsDeeper(JSON.parse(nest(MAX_DEPTH))), 'the default limit itself is fine');
  t.ok(nestsDeeper(JSON.parse(nest(100_000))), 'and 100,000 levels are found without recursion');
  // What the limit protects: a value at the limit can still be sent on.
  t.doesNotThrow(() => JSON.stringify({ items: [JSON.parse(nest(MAX_DEPTH))] }));
});

t.test('script answers nested too deep fail validation', async (t) => {
  const fields = { items: 'items', suppliers: 'suppliers' };
  t.same(parseItems(`{"items":[{"deep":${nest(5000)}}]}`, fields), { ok: false, code: 'E_ITEMS_RESPONSE' });
  t.same(parseSuppliers(`{"suppliers":[{"deep":${nest(5000)}}]}`, 'suppliers'), { ok: false, code: 'E_SUPPLIERS_RESPONSE' });
  t.match(parseItems(`{"items":[{"deep":${nest(50)}}]}`, fields), { ok: true }, 'ordinary nesting passes');
});
