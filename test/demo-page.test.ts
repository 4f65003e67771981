// The demo page (docs/scripts.md, The demo scripts) in Debian's Chromium against real aggregators
// and real PHP: each scenario button, Send All Requests, the /stats figures and chart, the echo
// form, and the page behind the shipped nginx config at /ws/. The expectations below come from the
// docs, not from the page's own "as expected" table. Screenshots go to test-output/.
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { Page } from 'playwright-core';
import { ROOT, type TestServer, startServer } from './helpers/harness.js';
import { type TestBrowser, launchBrowser, newPage, screenshot } from './helpers/browser.js';
import { startNginx } from './helpers/nginx.js';

interface Row {
  kind: string;
  label: string;
  status: string;
  items: number;
}
interface Card {
  state: string;
  end: string;
  status: string;
  close: string;
  items: number;
  itemRows: number;
  itemBadge: string;
  rows: Row[];
  more: string;
  errorBadges: number;
  request: string;
}

async function readCard(page: Page, scenario: string): Promise<Card> {
  return page.$eval(`.run[data-scenario="${scenario}"]`, (node) => {
    const c = node as HTMLElement;
    const text = (sel: string) => c.querySelector(sel)?.textContent?.trim() ?? '';
    return {
      state: c.dataset.state ?? '',
      end: c.dataset.end ?? '',
      status: text('.run-meta .badge'),
      close: text('.close'),
      items: Number(c.dataset.items),
      itemRows: c.querySelectorAll('.item-table tbody tr').length,
      itemBadge: text('.items .count'),
      rows: Array.from(c.querySelectorAll('.task-table tbody tr')).map((tr) => ({
        kind: (tr as HTMLElement).dataset.kind ?? '',
        label: tr.children[1]?.textContent?.trim() ?? '',
        status: tr.children[2]?.textContent?.trim() ?? '',
        items: Number(tr.children[3]?.textContent),
      })),
      more: c.querySelector('.more:not([hidden])')?.textContent ?? '',
      errorBadges: c.querySelectorAll('.badge.error').length,
      request: text('.request-line'),
    };
  });
}

const itemRows = (card: Card) => card.rows.filter((r) => r.kind === 'ITEMS');
const bySupplier = (card: Card) =>
  Object.fromEntries(itemRows(card).map((r) => [r.label.replace(/ ↳.*$/, ''), r.status] as const));

/** What the page must show for each scenario, from docs/protocol.md, docs/errors.md and docs/scripts.md. */
const CHECKS: Record<string, (t: Test, c: Card) => void> = {
  normal(t, c) {
    t.equal(c.status, 'SUCCESS');
    t.match(c.close, /^close 1000/);
    t.same(bySupplier(c), { 'normal-1': 'SUCCESS', 'normal-2': 'SUCCESS', 'normal-3': 'SUCCESS' }, '3 supplier rows in SUCCESS');
    t.same(
      itemRows(c).map((r) => r.items),
      [3, 3, 3],
    );
    t.equal(c.itemRows, 9, '9 items in the table');
    t.equal(c.itemBadge, '9');
  },
  analog(t, c) {
    t.equal(c.status, 'SUCCESS');
    t.equal(itemRows(c).length, 5, '3 suppliers + 2 analogs');
    t.ok(
      itemRows(c).every((r) => r.status === 'SUCCESS'),
      'all SUCCESS',
    );
    t.equal(itemRows(c).filter((r) => r.label.includes('↳ of #')).length, 2, 'two rows name their parent');
    t.equal(c.itemRows, 15);
  },
  mixed(t, c) {
    t.equal(c.status, 'SUCCESS', 'the suppliers step succeeded, so the session did');
    t.match(bySupplier(c), {
      'normal-1': 'SUCCESS',
      'analog-2': 'SUCCESS',
      'error-3': 'ERROR E_SCRIPT_ERROR',
      'timeout-4': 'ERROR E_SCRIPT_TIMEOUT',
      'badjson-5': 'ERROR E_ITEMS_JSON',
      'badresponse-6': 'ERROR E_ITEMS_RESPONSE',
    });
    t.equal(itemRows(c).length, 8, '6 suppliers + 2 analogs of analog-2');
    t.equal(c.itemRows, 12);
  },
  emptySuppliers(t, c) {
    t.equal(c.status, 'SUCCESS');
    t.same(itemRows(c), []);
    t.match(c.rows, [{ kind: 'SUPPLIERS', status: 'SUCCESS' }]);
    t.equal(c.itemRows, 0);
  },
  suppliersTimeout(t, c) {
    t.equal(c.status, 'ERROR E_SCRIPT_TIMEOUT');
    t.match(c.close, /^close 1000 E_SCRIPT_TIMEOUT/);
    t.same(c.rows, [{ kind: 'SUPPLIERS', label: 'suppliers script', status: 'ERROR E_SCRIPT_TIMEOUT', items: 0 }]);
  },
  suppliersError(t, c) {
    t.equal(c.status, 'ERROR E_SCRIPT_ERROR');
    t.match(c.close, /^close 1000/);
  },
  suppliersNotJson(t, c) {
    t.equal(c.status, 'ERROR E_SUPPLIERS_JSON');
  },
  suppliersBadResponse(t, c) {
    t.equal(c.status, 'ERROR E_SUPPLIERS_RESPONSE');
  },
  emptyItems(t, c) {
    t.equal(c.status, 'SUCCESS');
    t.same(bySupplier(c), { 'empty-1': 'SUCCESS', 'empty-2': 'SUCCESS', 'empty-3': 'SUCCESS' });
    t.equal(c.itemRows, 0);
  },
  itemsTimeout(t, c) {
    t.equal(c.status, 'SUCCESS');
    t.same(Object.values(bySupplier(c)), Array(3).fill('ERROR E_SCRIPT_TIMEOUT'));
  },
  itemsError(t, c) {
    t.equal(c.status, 'SUCCESS');
    t.same(bySupplier(c), { 'error-1': 'ERROR E_SCRIPT_ERROR', 'error-2': 'ERROR E_SCRIPT_ERROR' });
  },
  itemsBadJson(t, c) {
    t.equal(c.status, 'SUCCESS');
    t.same(bySupplier(c), { 'badjson-1': 'ERROR E_ITEMS_JSON', 'badjson-2': 'ERROR E_ITEMS_JSON' });
  },
  itemsBadResponse(t, c) {
    t.equal(c.status, 'SUCCESS');
    t.same(bySupplier(c), { 'badresponse-1': 'ERROR E_ITEMS_RESPONSE', 'badresponse-2': 'ERROR E_ITEMS_RESPONSE' });
  },
  sessionTimeout(t, c) {
    t.equal(c.status, 'ERROR E_SESSION_TIMEOUT');
    t.match(c.close, /^close 4408 E_SESSION_TIMEOUT/);
    t.equal(bySupplier(c)['normal-1'], 'SUCCESS', 'the quick supplier finished first');
    t.equal(c.itemRows, 3);
    const slow = itemRows(c).filter((r) => r.label.startsWith('timeout-'));
    t.ok(slow.length > 20, 'the slow suppliers are listed');
    t.ok(
      slow.every((r) => /^ERROR E_(SCRIPT_TIMEOUT|SESSION_TIMEOUT|SCRIPT_CANCELLED)$/.test(r.status)),
      'each slow one ended with a timeout or cancel code',
    );
    t.match(c.more, /E_SCRIPT_CANCELLED/, 'the unlisted rest are summed up, cancelled');
  },
  analogLoop(t, c) {
    t.equal(c.status, 'ERROR E_SESSION_TIMEOUT');
    t.match(c.close, /^close 4408/);
    const loops = itemRows(c);
    t.ok(loops.length >= 3, `the loop went round (${loops.length} rows)`);
    t.ok(
      loops.slice(1).every((r) => r.label.startsWith('loop-1 ↳ of #')),
      'every later round names its parent',
    );
    t.ok(c.items >= 2, 'items arrived while it looped');
  },
  'bad JSON'(t, c) {
    t.equal(c.status, 'ERROR E_REQUEST_JSON');
    t.match(c.close, /^close 4400 E_REQUEST_JSON/);
    t.same(c.rows, []);
  },
  'missing field'(t, c) {
    t.equal(c.status, 'ERROR E_ILLEGAL_REQUEST');
    t.match(c.close, /^close 4400 E_ILLEGAL_REQUEST/);
    t.notMatch(c.request, /apikey/, 'the request sent lacks apikey');
  },
  'close at once'(t, c) {
    t.equal(c.status, 'CLOSED by page');
    t.equal(c.end, 'CLOSED');
    t.equal(c.errorBadges, 0, 'nothing is shown as an error');
    t.notMatch(c.close, /E_/);
  },
};
const NAMES = Object.keys(CHECKS);

const ended = (name: string) => `.run[data-scenario="${name}"][data-state="ended"]`;

async function serve(t: Test, overrides: Record<string, string | number | boolean>): Promise<TestServer> {
  const srv = await startServer(overrides);
  t.teardown(async () => {
    await srv.close();
    fs.rmSync(srv.logDir, { recursive: true, force: true });
  });
  return srv;
}

let tb: TestBrowser;
t.before(async () => {
  tb = await launchBrowser();
});
// Closed and checked by the last test; this only covers a run that stopped early.
t.teardown(() => tb.close());

// Script and session timeouts short enough for a quick run, long enough that the quick
// scenarios finish on a loaded 2-core machine: Chromium, 20 PHP processes and the other test
// files share the CPU, and the aggregator's event loop was seen stalled for up to ~2 s there
// (script spawns are synchronous); a 2 s script timeout, or a session only 1 s longer than the
// script timeout, did not survive that.
const TIMEOUTS = { 'aggregator.timeout.script': 3, 'aggregator.timeout.session': 7 };

t.test('each scenario button; stats, chart and echo', async (t) => {
  const srv = await serve(t, TIMEOUTS);
  const { page, errors } = await newPage(tb.browser);
  t.teardown(() => page.close());
  await page.goto(`${srv.httpBase}/`);
  t.equal(await page.title(), 'Aggregator demo');
  const buttons = await page.$$eval('#scenarios button', (bs) => bs.map((b) => b.textContent));
  t.same(buttons, NAMES, 'a button per demo scenario plus bad JSON, missing field, close at once');

  // Click each button as a user would; the slow scenarios run on while the next is clicked.
  for (const name of NAMES) {
    await page.getByRole('button', { name, exact: true }).click();
    await page.waitForSelector(`.run[data-scenario="${name}"]`, { timeout: 10_000 });
  }
  t.equal(await page.locator('.run').count(), NAMES.length, 'one card per click');
  for (const name of NAMES) {
    await page.waitForSelector(ended(name), { timeout: 30_000 });
    const card = await readCard(page, name);
    t.test(name, async (t) => CHECKS[name]!(t, card));
  }

  // /stats every second: the figures catch up with the server (idle now) and keep updating.
  const want = srv.agg.stats.toJSON();
  t.equal(want.sessionTotal, NAMES.length, 'the server counted one session per click');
  t.equal(want.sessionAlive, 0);
  const shown = ['sessionTotal', 'sessionFinished', 'taskTotal', 'taskSucceeded', 'taskFailed', 'poolSize'] as const;
  const figures = Object.fromEntries(shown.map((k) => [k, String(want[k])]));
  const caughtUp = await page
    .waitForFunction(
      (w) => Object.entries(w).every(([k, v]) => document.querySelector(`[data-stat="${k}"]`)?.textContent === v),
      figures,
      { timeout: 5000 },
    )
    .then(() => true)
    .catch(() => false);
  t.ok(caughtUp, `the page shows the server's figures ${JSON.stringify(figures)}`);
  const updates = Number(await page.getAttribute('#figures', 'data-updates'));
  await page.waitForFunction((n) => Number(document.querySelector<HTMLElement>('#figures')?.dataset.updates) >= n + 2, updates, {
    timeout: 5000,
  });
  t.pass('the figures refresh every second');

  // The chart: the series are drawn in their colours on the canvas.
  const chart = await page.$eval('#chart', (node) => {
    const canvas = node as HTMLCanvasElement;
    const ctx = canvas.getContext('2d')!;
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const colours = { indigo: [79, 70, 229], cyan: [8, 145, 178], amber: [245, 158, 11] };
    const count: Record<string, number> = { indigo: 0, cyan: 0, amber: 0 };
    for (let i = 0; i < data.length; i += 4) {
      for (const [name, [r, g, b]] of Object.entries(colours)) {
        if (data[i + 3]! > 200 && Math.abs(data[i]! - r!) < 12 && Math.abs(data[i + 1]! - g!) < 12 && Math.abs(data[i + 2]! - b!) < 12)
          count[name]!++;
      }
    }
    return { count, samples: Number(canvas.dataset.samples) };
  });
  t.ok(chart.samples >= 4, `the chart has samples (${chart.samples})`);
  for (const [name, n] of Object.entries(chart.count)) t.ok(n > 20, `the ${name} line is drawn (${n} px)`);

  // Echo (docs/protocol.md, Echo) through the form.
  await page.fill('#echo-form input[name=echo]', 'hello page');
  await page.click('#echo-form button');
  await page.waitForSelector('#echo-out[data-ok]');
  t.equal(await page.getAttribute('#echo-out', 'data-ok'), 'true');
  t.match(await page.textContent('#echo-out'), '{"aggregator":{"php":{"echo":"hello page"}}}\n(close 1000)');

  const file = await screenshot(page, 'demo-scenarios.png');
  t.ok(fs.statSync(file).size > 10_000, `screenshot ${path.relative(ROOT, file)}`);
  t.same(errors, [], 'no errors in the page');
});

t.test('Send All Requests: every scenario at once ends as the docs say', async (t) => {
  const srv = await serve(t, TIMEOUTS);
  const { page, errors } = await newPage(tb.browser);
  t.teardown(() => page.close());
  await page.goto(`${srv.httpBase}/`);
  await page.getByRole('button', { name: 'Send All Requests' }).click();
  t.equal(await page.locator('.run').count(), NAMES.length, 'a card per scenario at once');
  t.same(
    await page.$$eval('.run', (cs) => cs.map((c) => (c as HTMLElement).dataset.scenario)),
    NAMES,
    'in table order',
  );
  await page.waitForFunction(
    (n) => document.querySelectorAll('.run[data-state="ended"]').length === n,
    NAMES.length,
    { timeout: 30_000 },
  );
  for (const name of NAMES) {
    const card = await readCard(page, name);
    t.test(name, async (t) => CHECKS[name]!(t, card));
  }
  t.equal(await page.textContent('#summary'), `${NAMES.length}/${NAMES.length} ended · ${NAMES.length} as expected`);
  await page.waitForFunction(
    (total) => document.querySelector('[data-stat="sessionFinished"]')?.textContent === String(total),
    NAMES.length,
    { timeout: 5000 },
  );
  const file = await screenshot(page, 'demo-send-all.png');
  t.ok(fs.existsSync(file));
  t.same(errors, [], 'no errors in the page');
});

t.test('behind the shipped nginx config at /ws/ (relative URLs only)', async (t) => {
  const srv = await serve(t, {});
  const conf = fs.readFileSync(path.join(ROOT, 'etc', 'nginx', 'aggregator.conf'), 'utf8');
  t.ok(conf.includes('http://127.0.0.1:8000/'), 'the shipped config proxies to 127.0.0.1:8000');
  // docs/client.md's example, verbatim, as a page of the shop's own site on the same nginx.
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'client.md'), 'utf8');
  const example = /```html\n([\s\S]*?)```/.exec(doc)?.[1];
  t.ok(example, 'docs/client.md has an html example');
  const nginx = await startNginx((port, dir) => {
    fs.writeFileSync(path.join(dir, 'shop.html'), `<!doctype html><html><head><link rel="icon" href="data:,"></head><body>${example}</body></html>`);
    return [
      `  server {`,
      `    listen 127.0.0.1:${port};`,
      `    location = /shop.html { default_type text/html; alias ${dir}/shop.html; }`,
      conf.replace('http://127.0.0.1:8000/', `http://127.0.0.1:${srv.port}/`),
      `  }`,
    ].join('\n');
  });
  t.teardown(() => nginx.stop());
  const { page, errors } = await newPage(tb.browser, 1280, 800);
  t.teardown(() => page.close());
  const requests: string[] = [];
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  page.on('websocket', (ws) => requests.push(new URL(ws.url()).pathname));
  await page.goto(`http://${nginx.base}/ws/`);
  await page.getByRole('button', { name: 'normal', exact: true }).click();
  await page.waitForSelector(ended('normal'), { timeout: 10_000 });
  CHECKS.normal!(t, await readCard(page, 'normal'));
  // The request form: a shop's own search (any code behaves like normal in the demo scripts).
  await page.fill('#search-form input[name=code]', 'K-1234');
  await page.click('#search-form button[type=submit]');
  await page.waitForSelector(ended('search K-1234'), { timeout: 10_000 });
  const own = await readCard(page, 'search K-1234');
  t.match(own, { status: 'SUCCESS', itemRows: 9 }, 'the form search shows its 9 items');
  t.match(own.request, /"code":"K-1234".*"apikey":"•••"/, 'the request line masks the apikey');
  t.equal(await page.textContent('.run[data-scenario="search K-1234"] .verdict'), '', 'no verdict for a free search');
  await page.waitForSelector('#health.up', { timeout: 5000 });
  await page.click('#echo-form button');
  await page.waitForSelector('#echo-out[data-ok="true"]', { timeout: 5000 });
  t.ok(requests.length > 4);
  t.same(
    requests.filter((p) => !p.startsWith('/ws/')),
    [],
    'every request the page made stayed under /ws/',
  );
  t.ok(requests.includes('/ws/ws') && requests.includes('/ws/stats') && requests.includes('/ws/echo'), 'search, stats and echo');
  t.same(errors, [], 'no errors in the page');

  await page.goto(`http://${nginx.base}/shop.html`);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent !== '', null, { timeout: 10_000 });
  t.equal(await page.textContent('#status'), '9 offers', 'the example shows the end');
  t.equal(await page.locator('#results tbody tr').count(), 9, 'and a row per item');
  t.same(errors, [], 'no errors in the example page');
});

t.test('the browser closes and leaves no process behind', async (t) => {
  t.same(await tb.close(), [], 'no Chromium process is left');
});
