// The demo page shows a cached task (docs/cache.md): with aggregator.cache.ttl on, a repeated
// search's tasks answered from the items cache get the "cached" badge and data-cached="true" on
// their row, in Debian's Chromium against a real aggregator and the real demo scripts. The
// screenshot goes to test-output/demo-cached.png.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { Page } from 'playwright-core';
import { ROOT, startServer } from './helpers/harness.js';
import { type TestBrowser, launchBrowser, newPage, screenshot } from './helpers/browser.js';

interface Row {
  kind: string;
  label: string;
  status: string;
  cached: boolean;
  badge: string;
}

/** The card of the n-th search the page ran (data-run counts from 1), once it ended. */
async function card(page: Page, run: number) {
  const sel = `.run[data-run="${run}"]`;
  await page.waitForSelector(`${sel}[data-state="ended"]`, { timeout: 15_000 });
  return page.$eval(sel, (node) => {
    const c = node as HTMLElement;
    return {
      scenario: c.dataset.scenario ?? '',
      end: c.dataset.end ?? '',
      items: c.querySelectorAll('.item-table tbody tr').length,
      summary: c.querySelector('.task-summary')?.textContent ?? '',
      rows: Array.from(c.querySelectorAll<HTMLElement>('.task-table tbody tr')).map((tr) => ({
        kind: tr.dataset.kind ?? '',
        label: tr.children[1]?.textContent?.trim() ?? '',
        status: tr.children[2]?.querySelector('.badge')?.textContent ?? '',
        cached: tr.dataset.cached === 'true',
        badge: tr.querySelector('.badge.cached')?.textContent ?? '',
      })),
    };
  });
}

const itemRows = (rows: Row[]) => rows.filter((r) => r.kind === 'ITEMS');

let tb: TestBrowser;
t.before(async () => {
  tb = await launchBrowser();
});
t.teardown(() => tb.close());

t.test('a repeated search shows its tasks answered from the cache', async (t) => {
  const srv = await startServer({ 'aggregator.cache.ttl': 600, 'aggregator.timeout.script': 3, 'aggregator.timeout.session': 7 });
  t.teardown(async () => {
    await srv.close();
    fs.rmSync(srv.logDir, { recursive: true, force: true });
  });
  const { page, errors } = await newPage(tb.browser);
  t.teardown(() => page.close());
  await page.goto(`${srv.httpBase}/`);

  // Each scenario twice, one after the other: the first runs the scripts, the second is a hit.
  const runs: Record<string, [number, number]> = { normal: [1, 2], analog: [3, 4] };
  for (const [name, [fresh, again]] of Object.entries(runs)) {
    await page.getByRole('button', { name, exact: true }).click();
    const first = await card(page, fresh);
    await page.getByRole('button', { name, exact: true }).click();
    const second = await card(page, again);
    t.test(name, async (t) => {
      const tasks = name === 'normal' ? 3 : 5;
      for (const c of [first, second]) t.match(c, { scenario: name, end: 'SUCCESS', items: tasks * 3 }, `card ${name}: SUCCESS, all items`);
      t.equal(itemRows(first.rows).length, tasks, `${tasks} supplier rows`);
      t.ok(
        first.rows.every((r) => !r.cached && r.badge === ''),
        'the first search shows no cached task',
      );
      t.same(
        itemRows(second.rows).map((r) => [r.status, r.cached, r.badge]),
        Array(tasks).fill(['SUCCESS', true, 'cached']),
        'every supplier row of the repeat: SUCCESS with the cached badge and data-cached="true"',
      );
      t.same(
        itemRows(second.rows).map((r) => r.label.replace(/#\d+/g, '#')),
        itemRows(first.rows).map((r) => r.label.replace(/#\d+/g, '#')),
        'the same suppliers (nested ones with their parent)',
      );
      t.match(second.rows.find((r) => r.kind === 'SUPPLIERS'), { status: 'SUCCESS', cached: false }, 'the suppliers step is never cached');
      // The summary counts the suppliers task too; only the items tasks are cached.
      t.equal(second.summary, `${tasks + 1} tasks · ${tasks + 1} success (${tasks} cached)`, 'the summary counts them');
      t.notMatch(first.summary, 'cached', 'the first summary has none');
    });
  }
  t.equal(await page.locator('tr[data-cached="true"]').count(), 8, 'tr[data-cached="true"]: 3 + 5 rows on the page');

  const file = await screenshot(page, 'demo-cached.png');
  t.ok(fs.statSync(file).size > 10_000, `screenshot ${path.relative(ROOT, file)}`);
  t.same(errors, [], 'no errors in the page');
});

t.test('the browser closes and leaves no process behind', async (t) => {
  t.same(await tb.close(), [], 'no Chromium process is left');
});
