// The items cache key: the same items command and stdin line give the same key; any change
// (a supplier's params above all: two shops' logins must never share answers) gives another;
// the key is a versioned SHA-256, so nothing of the clear text is in it.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import t from 'tap';
import { KEY_PATTERN, cacheKey } from '../src/cache/key.js';

const ITEMS = '/usr/bin/php -d display_errors=stderr script/items.php';
const supplier = (params: Record<string, unknown>) => `${JSON.stringify({ info: { supplier: 'normal-1' }, code: '3310', params })}\n`;
const shopA = supplier({ login: 'shop-a-login', password: 'pa55-shop-a', apikey: 'key-AAAA-1111' });
const shopB = supplier({ login: 'shop-b-login', password: 'pa55-shop-b', apikey: 'key-BBBB-2222' });

t.test('same inputs, same key; the form is v1: + 64 hex digits', async (t) => {
  const key = cacheKey(ITEMS, shopA);
  t.equal(cacheKey(ITEMS, shopA), key);
  t.match(key, KEY_PATTERN);
  t.equal(key.length, 3 + 64);
});

t.test('params change the key: two shops never share an answer', async (t) => {
  t.not(cacheKey(ITEMS, shopA), cacheKey(ITEMS, shopB));
  // One character of one param is enough.
  t.not(cacheKey(ITEMS, supplier({ login: 'x', password: 'p1' })), cacheKey(ITEMS, supplier({ login: 'x', password: 'p2' })));
});

t.test('the items command and the exact line are part of the key', async (t) => {
  t.not(cacheKey(ITEMS, shopA), cacheKey(`${ITEMS} --other`, shopA), 'another command');
  t.not(cacheKey(ITEMS, shopA), cacheKey(ITEMS, shopA.trimEnd()), 'the trailing newline counts');
  t.not(cacheKey(ITEMS, '{"a":1,"b":2}\n'), cacheKey(ITEMS, '{"b":2,"a":1}\n'), 'the same JSON spelt otherwise is another line');
});

t.test('the command/line boundary is unambiguous', async (t) => {
  t.not(cacheKey('a\nb', 'c'), cacheKey('a', 'b\nc'));
  t.not(cacheKey('a:', 'b'), cacheKey('a', ':b'));
  t.not(cacheKey('', 'x'), cacheKey('x', ''));
});

t.test('no clear text in the key, and it is not a bare hash of the line', async (t) => {
  const key = cacheKey(ITEMS, shopA);
  for (const secret of ['shop-a-login', 'pa55-shop-a', 'key-AAAA-1111', 'normal-1', '3310', 'items.php']) {
    t.notOk(key.includes(secret), `no "${secret}" in the key`);
  }
  // Not sha256(line) or sha256(command + "\n" + line): a table of hashed lines built for
  // another program does not match these keys.
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  t.not(key.slice(3), sha(shopA));
  t.not(key.slice(3), sha(`${ITEMS}\n${shopA}`));
});

t.test('property: deterministic, well-formed, and no two splits of one text share a key', async (t) => {
  // The failure that matters is not a SHA-256 collision but an encoding that makes
  // (command, line) pairs with the same concatenation collide: try every split.
  let pairs = 0;
  fc.assert(
    fc.property(fc.string({ maxLength: 12 }), (text) => {
      const keys = new Set<string>();
      for (let i = 0; i <= text.length; i++) {
        const key = cacheKey(text.slice(0, i), text.slice(i));
        if (key !== cacheKey(text.slice(0, i), text.slice(i)) || !KEY_PATTERN.test(key)) return false;
        keys.add(key);
        pairs++;
      }
      return keys.size === text.length + 1;
    }),
    { seed: 13, numRuns: 500 },
  );
  t.ok(pairs > 1000, `${pairs} (command, line) splits, all distinct per text`);
});
