// The demo PHP scripts (docs/scripts.md, The demo scripts; docs/protocol.md, Echo), run directly
// with the PHP CLI, without the aggregator: each scenario's supplier list, each supplier class's
// items answer, echo.
import t, { type Test } from 'tap';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PHP = '/usr/bin/php';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCRIPTS = ['lib.php', 'suppliers.php', 'items.php', 'script.php'];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

// Runs script/<name> with `input` on stdin. error_reporting=-1 and display_errors=stderr
// make any notice or deprecation visible on stderr, which the happy paths require empty.
function run(name: string, input: string, timeout?: number): SpawnSyncReturns<string> {
  return spawnSync(PHP, ['-d', 'display_errors=stderr', '-d', 'error_reporting=-1', `script/${name}`], {
    cwd: ROOT,
    input,
    encoding: 'utf8',
    env: { ...process.env, AGGREGATOR_DEMO_DELAY_MS: '0' },
    maxBuffer: 16 * 1024 * 1024,
    ...(timeout === undefined ? {} : { timeout }),
  });
}

// Runs a script that must succeed and answer one JSON object.
function runJson(t: Test, name: string, input: unknown): Obj {
  const r = run(name, JSON.stringify(input) + '\n');
  t.equal(r.status, 0, `${name} exit code`);
  t.equal(r.stderr, '', `${name} stderr`);
  const out = JSON.parse(r.stdout) as Json;
  t.ok(out !== null && typeof out === 'object' && !Array.isArray(out), 'stdout is a JSON object');
  return out as Obj;
}

// Asserts the script was still running when spawnSync's timeout killed it.
function assertHangs(t: Test, name: string, input: unknown): void {
  const r = run(name, JSON.stringify(input) + '\n', 500);
  t.equal(r.signal, 'SIGTERM', 'killed by the timeout');
  t.equal(r.status, null, 'did not exit on its own');
  t.equal((r.error as NodeJS.ErrnoException | undefined)?.code, 'ETIMEDOUT');
  t.equal(r.stdout, '', 'answered nothing');
}

function isNotJson(text: string): boolean {
  try {
    JSON.parse(text);
    return false;
  } catch {
    return true;
  }
}

const request = (code: string): Obj => ({ code, brand: 'ctr', apikey: '111111', analog: 1 });

function supplier(cls: string): Obj {
  return {
    class: cls,
    params: { login: 'demo', password: `secret-${cls}` },
    code: '3310',
    brand: 'ctr',
    analog: 1,
    info: { supplier: cls },
  };
}

function classesOf(out: Obj): string[] {
  if (!Array.isArray(out.suppliers)) return [];
  return (out.suppliers as Obj[]).map((s) => s.class as string);
}

t.test('php -l accepts every script', async (t) => {
  for (const f of SCRIPTS) {
    const r = spawnSync(PHP, ['-l', `script/${f}`], { cwd: ROOT, encoding: 'utf8' });
    t.equal(r.status, 0, `${f}: ${r.stdout}${r.stderr}`);
  }
});

t.test('suppliers.php', async (t) => {
  const timeouts = Array.from({ length: 2000 }, (_, i) => `timeout-${i + 1}`);
  const lists: Record<string, string[]> = {
    normal: ['normal-1', 'normal-2', 'normal-3'],
    analog: ['normal-1', 'normal-2', 'analog-3'],
    mixed: ['normal-1', 'analog-2', 'error-3', 'timeout-4', 'badjson-5', 'badresponse-6'],
    emptySuppliers: [],
    emptyItems: ['empty-1', 'empty-2', 'empty-3'],
    itemsTimeout: ['timeout-1', 'timeout-2', 'timeout-3'],
    itemsError: ['error-1', 'error-2'],
    itemsBadJson: ['badjson-1', 'badjson-2'],
    itemsBadResponse: ['badresponse-1', 'badresponse-2'],
    sessionTimeout: ['normal-1', ...timeouts],
    analogLoop: ['loop-1'],
    '3310': ['normal-1', 'normal-2', 'normal-3'], // unknown code: like normal
  };
  for (const [code, classes] of Object.entries(lists)) {
    t.test(code, async (t) => {
      const out = runJson(t, 'suppliers.php', request(code));
      t.strictSame(classesOf(out), classes);
      if (code === 'sessionTimeout') t.equal(classes.length, 2001);
    });
  }

  t.test('supplier objects carry params, info and the request fields', async (t) => {
    const out = runJson(t, 'suppliers.php', { code: 'mixed', brand: 'ctr', apikey: 'x', analog: 0 });
    for (const s of out.suppliers as Obj[]) {
      const cls = s.class as string;
      t.strictSame(s, {
        class: cls,
        params: { login: 'demo', password: `secret-${cls}` },
        code: 'mixed',
        brand: 'ctr',
        analog: 0,
        info: { supplier: cls },
      });
    }
  });

  t.test('suppliersTimeout hangs', async (t) => assertHangs(t, 'suppliers.php', request('suppliersTimeout')));

  t.test('suppliersError exits non-zero with a message', async (t) => {
    const r = run('suppliers.php', JSON.stringify(request('suppliersError')) + '\n');
    t.equal(r.status, 1);
    t.match(r.stderr, /suppliersError/);
  });

  t.test('suppliersNotJson answers text', async (t) => {
    const r = run('suppliers.php', JSON.stringify(request('suppliersNotJson')) + '\n');
    t.equal(r.status, 0);
    t.not(r.stdout.trim(), '');
    t.ok(isNotJson(r.stdout), 'stdout is not JSON');
  });

  t.test('suppliersBadResponse lacks suppliers', async (t) => {
    const out = runJson(t, 'suppliers.php', request('suppliersBadResponse'));
    t.notOk('suppliers' in out);
  });
});

t.test('items.php', async (t) => {
  // Checks n well-formed items from supplier `cls`.
  function checkItems(t: Test, out: Obj, cls: string, n: number): void {
    t.ok(Array.isArray(out.items), 'items is an array');
    const items = out.items as Obj[];
    t.equal(items.length, n);
    items.forEach((item, i) => {
      t.match(item, {
        code: String,
        brand: 'ctr',
        name: `Part ${i + 1} from ${cls}`,
        price: /^\d+$/,
        quantity: /^\d+$/,
        supplier: cls,
      });
    });
    t.equal(new Set(items.map((it) => it.code)).size, n, 'codes differ by index');
  }

  t.test('normal: 3 items, no suppliers', async (t) => {
    const out = runJson(t, 'items.php', supplier('normal-1'));
    checkItems(t, out, 'normal-1', 3);
    t.notOk('suppliers' in out);
    t.match((out.items as Obj[])[0], { code: '3311', price: '123', quantity: '30' }, "the original requirements' example item");
  });

  t.test('unknown prefix: like normal', async (t) => {
    const out = runJson(t, 'items.php', supplier('CManAutotrade'));
    checkItems(t, out, 'CManAutotrade', 3);
  });

  t.test('analog: 3 items and suppliers normal-1, normal-2', async (t) => {
    const out = runJson(t, 'items.php', supplier('analog-3'));
    checkItems(t, out, 'analog-3', 3);
    t.strictSame(out.suppliers, [
      { ...supplier('normal-1'), analog: 0 },
      { ...supplier('normal-2'), analog: 0 },
    ]);
  });

  t.test('loop: 1 item and itself', async (t) => {
    const self = { ...supplier('loop-1'), params: {}, extra: [1, { a: 'ж/' }] };
    const out = runJson(t, 'items.php', self);
    checkItems(t, out, 'loop-1', 1);
    t.strictSame(out.suppliers, [self]);
  });

  t.test('empty: no items', async (t) => {
    t.strictSame(runJson(t, 'items.php', supplier('empty-2')), { items: [] });
  });

  t.test('timeout hangs', async (t) => assertHangs(t, 'items.php', supplier('timeout-17')));

  t.test('error exits non-zero with a message', async (t) => {
    const r = run('items.php', JSON.stringify(supplier('error-3')) + '\n');
    t.not(r.status, 0);
    t.not(r.status, null);
    t.match(r.stderr, /error-3/);
  });

  t.test('badjson answers text', async (t) => {
    const r = run('items.php', JSON.stringify(supplier('badjson-5')) + '\n');
    t.equal(r.status, 0);
    t.not(r.stdout.trim(), '');
    t.ok(isNotJson(r.stdout), 'stdout is not JSON');
  });

  t.test('badresponse lacks items', async (t) => {
    const out = runJson(t, 'items.php', supplier('badresponse-6'));
    t.notOk('items' in out);
  });
});

t.test('script.php echoes', async (t) => {
  const input = { echo: 'xyz', empty: {}, list: [1, 'two', null], text: 'ж/' };
  t.strictSame(runJson(t, 'script.php', input), { php: input });
  t.strictSame(runJson(t, 'script.php', {}), { php: {} });
});

t.test('invalid input JSON: stderr and exit 1', async (t) => {
  for (const f of ['suppliers.php', 'items.php', 'script.php']) {
    for (const input of ['not json', '']) {
      const r = run(f, input);
      t.equal(r.status, 1, `${f} <${input}> exit code`);
      t.match(r.stderr, /invalid input JSON/);
      t.equal(r.stdout, '');
    }
  }
  for (const f of ['suppliers.php', 'items.php']) {
    const r = run(f, '[1,2]\n');
    t.equal(r.status, 1, `${f}: a non-object is refused`);
    t.match(r.stderr, /must be an object/);
  }
});

t.test('AGGREGATOR_DEMO_DELAY_MS=0 answers at once', async (t) => {
  const start = Date.now();
  runJson(t, 'suppliers.php', request('normal'));
  runJson(t, 'items.php', supplier('normal-1'));
  t.ok(Date.now() - start < 2000);
});
