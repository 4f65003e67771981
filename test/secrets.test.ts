// src/secrets.ts: the secret values of a script's stdin, and their removal from stderr text.
import t from 'tap';
import { REDACTED, redact, redactStderr, secretsOf } from '../src/secrets.js';

const supplier = JSON.stringify({
  name: 'acme',
  info: { shown: 'visible-info' },
  params: { login: 'LOGIN-1', password: 'pa"ss\\word', pin: 12345678, short: 'ab', nested: [{ token: 'TOKEN-9' }] },
});

t.test('secretsOf: apikey and everything under params, raw and JSON-escaped', async (t) => {
  const s = secretsOf(supplier);
  for (const v of ['LOGIN-1', 'pa"ss\\word', 'pa\\"ss\\\\word', '12345678', 'TOKEN-9']) t.ok(s.includes(v), v);
  t.notOk(s.includes('acme'), 'not the other fields');
  t.notOk(s.includes('visible-info'));
  t.notOk(s.includes('ab'), 'not values too short to be secrets');
  t.same(secretsOf(JSON.stringify({ code: 'x', apikey: 'KEY-777' })), ['KEY-777']);
  t.same(secretsOf('not json'), []);
  t.same(secretsOf('{"apikey":null,"params":{}}'), []);
});

t.test('redact: every occurrence, longest secret first', async (t) => {
  t.equal(redact('a KEY-1 b KEY-1 KEY-12', ['KEY-12', 'KEY-1']), `a ${REDACTED} b ${REDACTED} ${REDACTED}`);
  t.equal(redact('nothing here', ['KEY-1']), 'nothing here');
});

t.test('redactStderr: only the stderr text of a log entry changes', async (t) => {
  const entry = { pid: 1, stderr: `got ${supplier}`, stderrBytes: 10 };
  const out = redactStderr(entry, supplier) as typeof entry;
  t.notMatch(out.stderr, /LOGIN-1|TOKEN-9|12345678|pa\\"ss/);
  t.match(out.stderr, /visible-info/);
  t.equal(out.pid, 1);
  t.equal(entry.stderr.includes('LOGIN-1'), true, 'the original entry is not changed');
  const plain = { pid: 2 };
  t.equal(redactStderr(plain, supplier), plain, 'no stderr, no copy');
});
