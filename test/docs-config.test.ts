// docs/configuration.md and the config schema (KEY_DOCS in src/config.ts) must agree: the same
// keys, the same defaults, the same environment names. Either side changing alone fails here.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { DEFAULTS, KEY_DOCS, envName, loadConfig } from '../src/config.js';
import { ROOT } from './helpers/harness.js';

interface Row {
  key: string;
  default: string;
  env: string;
}

/** Rows of the table whose first cell is a `dotted.key`. "(empty)" is the empty default. */
function tableRows(markdown: string): Row[] {
  const rows: Row[] = [];
  for (const line of markdown.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    // "| `key` | default | `ENV` | meaning |" → ['', key, default, env, meaning, '']
    const key = /^`([a-z][a-z0-9.-]*\.[a-z0-9.-]+)`$/.exec(cells[1] ?? '')?.[1];
    if (!key) continue;
    const def = cells[2] ?? '';
    rows.push({
      key,
      default: def === '(empty)' ? '' : (/^`(.*)`$/.exec(def)?.[1] ?? `<not in backticks: ${def}>`),
      env: /^`(.*)`$/.exec(cells[3] ?? '')?.[1] ?? '',
    });
  }
  return rows;
}

const doc = fs.readFileSync(path.join(ROOT, 'docs', 'configuration.md'), 'utf8');
const rows = tableRows(doc);

t.test('the table parser reads rows (or an empty table would pass)', async (t) => {
  t.same(tableRows('| `a.b` | `1` | `A_B` | x |\n| `c.d-e` | (empty) | `C_D_E` | y |\n| key | default | e | m |'), [
    { key: 'a.b', default: '1', env: 'A_B' },
    { key: 'c.d-e', default: '', env: 'C_D_E' },
  ]);
  t.ok(rows.length >= 25, `${rows.length} rows in docs/configuration.md`);
});

t.test('same keys, each once', async (t) => {
  const documented = rows.map((r) => r.key);
  t.same([...new Set(documented)].length, documented.length, 'no key documented twice');
  t.same(
    documented.filter((k) => !(k in KEY_DOCS)),
    [],
    'every documented key exists in the schema',
  );
  t.same(
    Object.keys(KEY_DOCS).filter((k) => !documented.includes(k)),
    [],
    'every schema key is documented',
  );
});

t.test('same defaults and environment names', async (t) => {
  for (const row of rows) {
    const spec = KEY_DOCS[row.key];
    if (!spec) continue;
    t.equal(row.default, spec.default, `${row.key}: default`);
    t.equal(row.env, envName(row.key), `${row.key}: environment name`);
  }
  t.same(Object.fromEntries(rows.map((r) => [r.key, r.default])), DEFAULTS, 'the documented defaults are the defaults');
});

t.test('the documented defaults load as a valid configuration', async (t) => {
  const argv = rows.map((r) => `-D${r.key}=${r.default}`);
  const { config, warnings } = loadConfig({ argv, env: {}, cwd: ROOT });
  t.same(warnings, []);
  t.same(config, loadConfig({ argv: [], env: {}, cwd: ROOT }).config);
});

t.test('the shipped etc/application.properties only sets known keys', async (t) => {
  const { warnings } = loadConfig({ argv: ['--config', path.join(ROOT, 'etc', 'application.properties')], env: {}, cwd: ROOT });
  t.same(warnings, []);
});
