// /debug (docs/protocol.md, /debug) in Debian's Chromium: the session and task charts are drawn
// from the machine definitions (every state of the live machine is a node, every transition an
// edge), the live counts and the session table follow real searches, /debug/sessions holds no request values, and all of it
// is 404 unless aggregator.debug=true. Screenshot: test-output/debug.png.
import fs from 'node:fs';
import t from 'tap';
import WebSocket from 'ws';
import { sessionMachine } from '../machines/session.js';
import { taskMachine } from '../machines/task.js';
import { type Chart, type DebugSessions, chartOf } from '../src/debug.js';
import { launchBrowser, newPage, screenshot } from './helpers/browser.js';
import { demoRequest, startServer, waitFor } from './helpers/harness.js';

const APIKEY = 'debug-page-apikey-4711';

function open(base: string, request?: unknown): WebSocket {
  const ws = new WebSocket(`${base}/ws`);
  if (request !== undefined) ws.on('open', () => ws.send(JSON.stringify(request)));
  return ws;
}

t.test('chartOf reads the machine: states, nesting, transitions with events and guards', async (t) => {
  const chart = chartOf(sessionMachine.root);
  const ids = chart.states.map((s) => s.id);
  // Every state node of the machine, and nothing else.
  const walk = (node: typeof sessionMachine.root): string[] =>
    Object.values(node.states).flatMap((c) => [c.id, ...walk(c as typeof sessionMachine.root)]);
  t.same(ids.sort(), walk(sessionMachine.root).sort());
  t.equal(chart.initial, sessionMachine.root.initial.target[0]!.id);
  const searching = chart.states.find((s) => s.key === 'searching');
  t.equal(searching?.type, 'compound');
  t.ok(searching?.initial, 'a compound state names its initial child');
  t.ok(
    chart.states.filter((s) => s.parent === searching?.id).length >= 2,
    'nested states keep their parent',
  );
  t.ok(
    chart.transitions.some((x) => x.event.startsWith('after ')),
    'delayed transitions are named after their delay',
  );
  t.ok(
    chart.transitions.some((x) => x.event === 'always'),
    'eventless transitions are kept (the definition JSON drops them)',
  );
  t.ok(
    chart.transitions.every((x) => ids.includes(x.target) && (ids.includes(x.source) || x.source === chart.id)),
    'every transition joins known states',
  );
  t.notOk(JSON.stringify(chart).includes('xstate.'), 'no xstate internals');
});

t.test('/debug is 404 unless aggregator.debug=true', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  t.equal(srv.agg.config.debug, false, 'off by default');
  for (const p of ['/debug', '/debug/', '/debug/sessions', '/debug/machine', '/debug/debug.js', '/debug/elk.js', '/debug/index.html']) {
    const res = await fetch(`${srv.httpBase}${p}`);
    await res.arrayBuffer();
    t.equal(res.status, 404, `${p} is 404`);
  }
  t.equal((await fetch(`${srv.httpBase}/`)).status, 200, 'the demo page is still served');
});

t.test('/debug with a long search: chart from the machine, live counts, session table', async (t) => {
  // Nothing ends by itself while the test looks (the demo's timeout scripts hang until killed,
  // the idle socket is not cut): the counts change only when the test changes them.
  const srv = await startServer({
    'aggregator.debug': true,
    'aggregator.timeout.script': 120,
    'aggregator.timeout.session': 120,
    'aggregator.timeout.request': 120,
  });
  const sockets: WebSocket[] = [];
  t.teardown(async () => {
    for (const ws of sockets) ws.terminate();
    await srv.close();
    fs.rmSync(srv.logDir, { recursive: true, force: true });
  });

  const machine = (await (await fetch(`${srv.httpBase}/debug/machine`)).json()) as Chart;
  t.same(machine, chartOf(sessionMachine.root), '/debug/machine is the chart of the running machine');
  const elk = await fetch(`${srv.httpBase}/debug/elk.js`);
  t.equal(elk.status, 200, 'elkjs is served by the aggregator');
  t.match(await elk.text(), /ELK/);

  // One search stuck on its items (3 running scripts), one on its suppliers, one idle socket,
  // and one rejected at once.
  sockets.push(open(srv.wsBase, demoRequest('itemsTimeout', { apikey: APIKEY })));
  sockets.push(open(srv.wsBase, demoRequest('suppliersTimeout', { apikey: APIKEY })));
  sockets.push(open(srv.wsBase));
  sockets.push(open(srv.wsBase, { code: 'x', brand: 'y' }));
  const sessionsJson = async () => (await (await fetch(`${srv.httpBase}/debug/sessions`)).json()) as DebugSessions;
  const leaf = (key: string) => machine.states.find((s) => s.key === key)!.id;
  t.ok(
    await waitFor(async () => {
      const d = await sessionsJson();
      return d.byState[leaf('fetchingItems')] === 1 && d.sessions.some((s) => s.tasks.running === 3);
    }, 8000),
    'the items search reached fetchingItems with 3 running scripts',
  );

  const data = await sessionsJson();
  t.equal(data.total, 3, 'three live sessions');
  t.equal(data.byState[leaf('fetchingSuppliers')], 1);
  t.equal(data.byState[leaf('awaitingRequest')], 1);
  t.equal(data.byState[leaf('searching')], 2, 'a compound state counts its children');
  t.equal(data.ended[leaf('rejected')], 1, 'the rejected one ended in rejected');
  const items = data.sessions.find((s) => s.state[0] === leaf('fetchingItems'));
  t.match(items, { tasks: { queued: 0, running: 3, created: 4, finished: 1 } });
  t.ok(items!.ageMs! >= 0 && items!.ageMs! < 10_000, 'age in ms');
  const raw = JSON.stringify(data);
  for (const secret of [APIKEY, 'apikey', 'params', 'password', 'secret-', 'itemsTimeout'])
    t.notOk(raw.includes(secret), `/debug/sessions does not contain ${secret}`);

  const tb = await launchBrowser();
  t.teardown(() => tb.close()); // if an assertion below throws
  const { page, errors } = await newPage(tb.browser, 1440, 900);
  await page.goto(`${srv.httpBase}/debug`);
  await page.waitForSelector('#chart[data-ready="true"]', { timeout: 15_000 });

  // The picture comes from the machine: a node per state, an edge per transition.
  const drawn = await page.$$eval('#chart g.state', (gs) => gs.map((g) => (g as SVGGElement).dataset.id));
  t.same([...drawn].sort(), machine.states.map((s) => s.id).sort(), 'every state of the machine is a node');
  const names = await page.$$eval('#chart g.state > text.name', (ns) => ns.map((n) => n.textContent));
  t.same([...names].sort(), machine.states.map((s) => s.key).sort(), 'labelled with the state keys');
  const edges = await page.$$eval('#chart g.edge', (es) =>
    es.map((e) => ({ s: (e as SVGGElement).dataset.source, t: (e as SVGGElement).dataset.target, label: e.textContent })),
  );
  for (const tr of machine.transitions) {
    const source = tr.source === machine.id ? '__any__' : tr.source;
    t.ok(
      edges.some((e) => e.s === source && e.t === tr.target && e.label?.startsWith(tr.event)),
      `edge ${tr.event}: ${tr.source} → ${tr.target}`,
    );
  }
  const laidOut = await page.$$eval('#chart g.edge path', (ps) => ps.filter((p) => /^M[\d.-]+,[\d.-]+ L/.test(p.getAttribute('d') ?? '')).length);
  t.ok(laidOut >= machine.transitions.length, 'every edge has a routed path');
  // Nested states are drawn inside their parent's box.
  const inside = await page.evaluate((ids) => {
    const box = (id: string) => document.querySelector(`#chart g.state[data-id="${id}"] > rect.box`)!.getBoundingClientRect();
    const [p, c] = [box(ids.parent), box(ids.child)];
    return c.left >= p.left && c.right <= p.right && c.top >= p.top && c.bottom <= p.bottom;
  }, { parent: leaf('searching'), child: leaf('fetchingItems') });
  t.ok(inside, 'fetchingItems is inside searching');

  // Live counts on the nodes and the session table.
  const count = (id: string) => page.textContent(`#chart g.state[data-id="${id}"] .count .n`);
  await page.waitForFunction((id) => document.querySelector(`#chart g.state[data-id="${id}"]`)?.getAttribute('data-live') === '1', leaf('fetchingItems'));
  t.equal(await count(leaf('fetchingItems')), '1');
  t.equal(await count(leaf('fetchingSuppliers')), '1');
  t.equal(await count(leaf('awaitingRequest')), '1');
  t.equal(await count(leaf('searching')), '2');
  t.equal(await count(leaf('rejected')), '1', 'a final state shows how many ended there');
  t.equal(await page.getAttribute(`#chart g.state[data-id="${leaf('done')}"]`, 'data-live'), '0');
  const rows = await page.$$eval('#sessions tbody tr', (trs) =>
    trs.map((tr) => Array.from(tr.children).map((td) => td.textContent)),
  );
  t.equal(rows.length, 3, 'a row per live session');
  t.ok(
    rows.some((r) => r[1] === 'searching.fetchingItems' && r[3] === '0' && r[4] === '3' && r[5] === '1' && r[6] === '4'),
    'the items search: queued 0, running 3, finished 1, created 4',
  );
  t.ok(
    rows.every((r) => /^\d+(\.\d)? (ms|s)$/.test(r[2] ?? '')),
    'ages',
  );
  // The task chart beside it: every state of the task machine, live counts from the task hosts.
  const taskMachineChart = (await (await fetch(`${srv.httpBase}/debug/task-machine`)).json()) as Chart;
  t.same(taskMachineChart, chartOf(taskMachine.root), '/debug/task-machine is the chart of the task machine');
  await page.waitForSelector('#task-chart[data-ready="true"]');
  const taskStates = await page.$$eval('#task-chart g.state', (gs) => gs.map((g) => (g as SVGGElement).dataset.id));
  t.same([...taskStates].sort(), taskMachineChart.states.map((s) => s.id).sort(), 'every task state is a node');
  const taskLive = (key: string) => page.getAttribute(`#task-chart g.state[data-id="task.${key}"]`, 'data-live');
  t.equal(await taskLive('running'), '4', 'four scripts run: three items scripts and one suppliers script');
  t.equal(await taskLive('queued'), '0');
  t.equal(await page.getAttribute('#task-chart g.state[data-id="task.succeeded"]', 'data-ended'), '1', 'one task ended in succeeded');
  t.match(await page.textContent('#host'), /taskHost as tasks/, 'the page says each session invokes its task host');
  t.same(data.tasks.byState, { 'task.queued': 0, 'task.running': 4 }, '/debug/sessions has the task counts too');
  const text = await page.textContent('body');
  t.notOk(text?.includes(APIKEY), 'the page shows no apikey');
  await screenshot(page, 'debug.png');

  // The counts are live: end the items search and the page follows.
  sockets[0]!.close();
  await page.waitForFunction((id) => document.querySelector(`#chart g.state[data-id="${id}"]`)?.getAttribute('data-live') === '0', leaf('fetchingItems'), {
    timeout: 5000,
  });
  t.equal(await count(leaf('closed')), '1', 'the closed search is counted in closed');
  t.equal(await page.locator('#sessions tbody tr').count(), 2);
  t.equal(await page.getAttribute('#task-chart g.state[data-id="task.running"]', 'data-live'), '1', 'its three scripts were stopped');
  t.same(errors, [], 'no errors in the page');
  await page.close();
  t.same(await tb.close(), [], 'no Chromium process is left');
});
