// /metrics (docs/protocol.md, docs/monitoring.md): scraped from a real server after real searches,
// parsed, and checked against the frames the searches received and against /stats.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ERROR_CODES } from '../src/errors.js';
import { OTHER_SUPPLIER, UNKNOWN_SUPPLIER, createMetrics, supplierLabels } from '../src/metrics.js';
import { livePids } from '../src/processes/reaper.js';
import { Stats, supplierClass, supplierOutcome } from '../src/stats.js';
import { type AnyFrame, ROOT, demoRequest, invariantViolations, search, startServer, waitFor } from './helpers/harness.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format 0.0.4 → samples (comments skipped). */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = l[2] ?? '';
    out.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return out;
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) => {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hits.length === 0 ? undefined : hits.reduce((a, s) => a + s.value, 0);
};

const scrape = async (base: string) => {
  const res = await fetch(`${base}/metrics`);
  return { type: res.headers.get('content-type') ?? '', samples: parseMetrics(await res.text()) };
};

t.test('after searches, /metrics holds the /stats figures, outcomes, errors, histograms, items', async (t) => {
  const srv = await startServer({ 'aggregator.metrics.node': 'node-test-7', 'aggregator.timeout.script': 1 });
  t.teardown(async () => {
    await srv.close();
    fs.rmSync(srv.logDir, { recursive: true, force: true });
  });
  const results = await Promise.all(['normal', 'mixed', 'itemsError', 'analog'].map((c) => search(srv.wsBase, demoRequest(c))));
  const bad = await search(srv.wsBase, 'not json');
  t.equal(bad.closeCode, 4400);
  const frames: AnyFrame[] = results.flatMap((r) => r.frames);
  for (const r of results) t.same(invariantViolations(r.frames), []);

  const { type, samples } = await scrape(srv.httpBase);
  const stats = (await (await fetch(`${srv.httpBase}/stats`)).json()) as Record<string, number>;
  t.match(type, /^text\/plain; version=0\.0\.4/);
  t.ok(samples.length > 50);
  t.ok(
    samples.every((s) => s.labels.instance === 'node-test-7'),
    'every sample carries instance="node-test-7"',
  );

  // The /stats figures (nothing runs now, so they are stable between the two requests).
  const mirror: [string, string][] = [
    ['aggregator_sessions_started_total', 'sessionTotal'],
    ['aggregator_sessions_alive', 'sessionAlive'],
    ['aggregator_sessions_finished_total', 'sessionFinished'],
    ['aggregator_tasks_queued_total', 'taskTotal'],
    ['aggregator_tasks_pending', 'taskPending'],
    ['aggregator_tasks_running', 'taskRunning'],
    ['aggregator_tasks_succeeded_total', 'taskSucceeded'],
    ['aggregator_tasks_failed_total', 'taskFailed'],
    ['aggregator_pool_size', 'poolSize'],
    ['aggregator_pool_busy', 'poolBusy'],
  ];
  for (const [metric, figure] of mirror) t.equal(value(samples, metric), stats[figure], `${metric} = /stats ${figure}`);
  t.equal(value(samples, 'aggregator_sessions_started_total'), 5);
  t.equal(value(samples, 'aggregator_pool_size'), 20);
  t.equal(value(samples, 'aggregator_pool_queued'), 0);
  t.ok((value(samples, 'aggregator_uptime_seconds') ?? -1) >= 0);

  // Outcomes and errors, counted from the frames the browsers got.
  const terminal = frames.filter((f) => f._task !== 'SESSION' && (f._status === 'SUCCESS' || f._status === 'ERROR'));
  for (const task of ['SUPPLIERS', 'ITEMS']) {
    for (const [outcome, status] of [
      ['succeeded', 'SUCCESS'],
      ['failed', 'ERROR'],
    ] as const) {
      const n = terminal.filter((f) => f._task === task && f._status === status).length;
      t.equal(value(samples, 'aggregator_tasks_ended_total', { task, outcome }) ?? 0, n, `${task} ${outcome} = ${n}`);
    }
  }
  const codes = new Set(terminal.filter((f) => f._status === 'ERROR').map((f) => String(f._error)));
  // (on a loaded machine more scripts may time out; the counts below hold either way)
  t.ok(codes.size >= 2 && codes.has('E_SCRIPT_TIMEOUT'), `several codes: ${[...codes].join(', ')}`);
  for (const code of codes) {
    const n = terminal.filter((f) => f._error === code).length;
    t.equal(value(samples, 'aggregator_errors_total', { scope: 'task', code }), n, `errors_total{scope=task,code=${code}} = ${n}`);
  }
  t.equal(value(samples, 'aggregator_errors_total', { scope: 'session', code: 'E_REQUEST_JSON' }), 1, 'a session error by code');

  // Histograms: one observation per script run.
  const tasks = frames.filter((f) => f._status === 'PENDING').length;
  t.equal(value(samples, 'aggregator_script_run_seconds_count'), tasks, 'one run-time observation per script');
  t.equal(value(samples, 'aggregator_queue_wait_seconds_count'), tasks, 'one queue-wait observation per script');
  t.equal(value(samples, 'aggregator_script_run_seconds_count', { task: 'SUPPLIERS' }), 4);
  const runSum = value(samples, 'aggregator_script_run_seconds_sum') ?? 0;
  t.ok(runSum > 1, `run time sum is real seconds (${runSum}; mixed has a 1 s timeout)`);
  const le05 = value(samples, 'aggregator_script_run_seconds_bucket', { task: 'ITEMS', le: '0.25' }) ?? 0;
  const inf = value(samples, 'aggregator_script_run_seconds_bucket', { task: 'ITEMS', le: '+Inf' }) ?? 0;
  t.ok(le05 < inf, 'the timed-out script sits in a higher bucket');

  t.equal(value(samples, 'aggregator_items_sent_total'), frames.filter((f) => f._status === 'SENDING').length, 'items sent');

  // Per supplier (the supplier's class, as the demo's suppliers carry it in _info): every ITEMS
  // task's end, fed by the task host, matches the frames the browsers got.
  const itemsEnds = terminal.filter((f) => f._task === 'ITEMS');
  const supplierOf = (f: AnyFrame) => String((f._info as { supplier?: unknown } | undefined)?.supplier);
  for (const supplier of new Set(itemsEnds.map(supplierOf))) {
    const ends = itemsEnds.filter((f) => supplierOf(f) === supplier);
    const ok = ends.filter((f) => f._status === 'SUCCESS').length;
    const failed = ends.length - ok; // no search here was cut short: every failure is the script's
    t.equal(value(samples, 'aggregator_supplier_tasks_total', { supplier, outcome: 'succeeded' }) ?? 0, ok, `${supplier}: ${ok} succeeded`);
    t.equal(value(samples, 'aggregator_supplier_tasks_total', { supplier, outcome: 'failed' }) ?? 0, failed, `${supplier}: ${failed} failed`);
    t.equal(value(samples, 'aggregator_supplier_seconds_count', { supplier }), ends.length, `${supplier}: a run time per run`);
  }
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds', 'process_open_fds', 'process_max_fds']) {
    t.ok(value(samples, name) !== undefined, `default metric ${name}`);
  }
});

t.test('each app has its own registry: a second app starts and counts on its own', async (t) => {
  const a = await startServer({ 'aggregator.metrics.node': 'a' });
  const b = await startServer({ 'aggregator.metrics.node': 'b' });
  t.teardown(async () => {
    await a.close();
    await b.close();
    fs.rmSync(a.logDir, { recursive: true, force: true });
    fs.rmSync(b.logDir, { recursive: true, force: true });
  });
  await search(a.wsBase, demoRequest('emptySuppliers'));
  const sa = (await scrape(a.httpBase)).samples;
  const sb = (await scrape(b.httpBase)).samples;
  t.equal(value(sa, 'aggregator_sessions_started_total', { instance: 'a' }), 1);
  t.equal(value(sb, 'aggregator_sessions_started_total', { instance: 'b' }), 0);
});

t.test('aggregator_launcher_deaths_total counts a killed launcher', async (t) => {
  const srv = await startServer({});
  t.teardown(async () => {
    await srv.close();
    fs.rmSync(srv.logDir, { recursive: true, force: true });
  });
  t.equal(value((await scrape(srv.httpBase)).samples, 'aggregator_launcher_deaths_total'), 0);
  const first = srv.agg.launcher.pid;
  process.kill(first ?? -1, 'SIGKILL');
  t.ok(await waitFor(() => srv.agg.launcher.pid !== first, 2000), 'noticed');
  t.equal(value((await scrape(srv.httpBase)).samples, 'aggregator_launcher_deaths_total'), 1);
  const res = await search(srv.wsBase, demoRequest('normal'));
  t.equal(res.frames.at(-1)?._status, 'SUCCESS', 'the next search starts a new launcher and succeeds');
});

t.test('scripts by runner, and aggregator_warm_parent_restarts_total counts a killed warm parent', async (t) => {
  const srv = await startServer({});
  t.teardown(async () => {
    await srv.close();
    fs.rmSync(srv.logDir, { recursive: true, force: true });
  });
  const first = await search(srv.wsBase, demoRequest('normal'));
  t.equal(first.frames.at(-1)?._status, 'SUCCESS');
  let samples = (await scrape(srv.httpBase)).samples;
  t.equal(value(samples, 'aggregator_script_runs_total', { task: 'ITEMS', runner: 'warm' }), 3, 'the demo scripts run warm by default');
  t.equal(value(samples, 'aggregator_script_runs_total', { task: 'SUPPLIERS', runner: 'warm' }), 1);
  t.equal(value(samples, 'aggregator_script_runs_total', { task: 'ITEMS', runner: 'spawn' }), undefined, 'none with spawn');
  t.equal(value(samples, 'aggregator_warm_parent_restarts_total'), 0);
  const launcher = srv.agg.launcher.pid ?? -1;
  const parents = livePids((p) => p.stat()?.ppid === launcher && p.cmdline().includes('warm-parent'));
  t.equal(parents.length, 1, 'one warm parent for the demo scripts (one program and options)');
  process.kill(parents[0] ?? -1, 'SIGKILL');
  // Out of /proc only once the launcher has reaped it, which is when its starter marks it dead
  // (the same callback): before that a zombie is no longer live, and a task sent to it would
  // fail as one running when the parent died.
  t.ok(await waitFor(() => !fs.existsSync(`/proc/${parents[0]}`), 5000), 'it is gone, and the launcher knows');
  const next = await search(srv.wsBase, demoRequest('normal'));
  t.equal(next.frames.at(-1)?._status, 'SUCCESS', 'the next search starts a new warm parent and succeeds');
  t.ok(await waitFor(async () => value((await scrape(srv.httpBase)).samples, 'aggregator_warm_parent_restarts_total') === 1, 5000), 'the restart is counted');
  samples = (await scrape(srv.httpBase)).samples;
  t.equal(value(samples, 'aggregator_script_runs_total', { task: 'ITEMS', runner: 'warm' }), 6);
});

t.test('docs/monitoring.md lists every aggregator_ metric the server exposes', async (t) => {
  const srv = await startServer();
  t.teardown(async () => {
    await srv.close();
    fs.rmSync(srv.logDir, { recursive: true, force: true });
  });
  const text = await (await fetch(`${srv.httpBase}/metrics`)).text();
  const names = new Set([...text.matchAll(/^# TYPE (aggregator_\w+) /gm)].map((m) => m[1] ?? ''));
  t.ok(names.size >= 15, `${names.size} aggregator_ metrics`);
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'monitoring.md'), 'utf8');
  t.same(
    [...names].filter((n) => !doc.includes(`\`${n}\``)),
    [],
    'none missing from the docs',
  );
});

/** A registry fed by a real Stats (no server): the per-supplier listener called directly. */
function supplierRegistry(limit: number) {
  const stats = new Stats({ size: 1, busy: 0 });
  const registry = createMetrics({ stats, pool: { queued: 0 }, launcher: { deaths: 0, warmRestarts: 0 }, instance: 'unit', suppliers: limit });
  return { stats, samples: async () => parseMetrics(await registry.metrics()) };
}

t.test('aggregator_supplier_tasks_total and aggregator_supplier_seconds, by supplier class', async (t) => {
  const { stats, samples } = supplierRegistry(100);
  stats.supplierTask('CManAutotrade', 'succeeded', 120);
  stats.supplierTask('CManAutotrade', 'succeeded', 380);
  stats.supplierTask('CManAutotrade', 'failed', 5000);
  stats.supplierTask('CManRossko', 'cancelled'); // removed from the queue: no run time
  stats.supplierTask('CManRossko', 'cancelled', 900); // killed by the session timeout while running
  const s = await samples();
  const tasks = (supplier: string, outcome: string) => value(s, 'aggregator_supplier_tasks_total', { supplier, outcome }) ?? 0;
  t.equal(tasks('CManAutotrade', 'succeeded'), 2);
  t.equal(tasks('CManAutotrade', 'failed'), 1);
  t.equal(tasks('CManAutotrade', 'cancelled'), 0);
  t.equal(tasks('CManRossko', 'cancelled'), 2);
  t.equal(value(s, 'aggregator_supplier_seconds_count', { supplier: 'CManAutotrade' }), 3, 'one observation per run');
  t.equal(value(s, 'aggregator_supplier_seconds_sum', { supplier: 'CManAutotrade' }), 5.5, 'in seconds');
  t.equal(value(s, 'aggregator_supplier_seconds_bucket', { supplier: 'CManAutotrade', le: '0.25' }), 1);
  t.equal(value(s, 'aggregator_supplier_seconds_bucket', { supplier: 'CManAutotrade', le: '5' }), 3);
  t.equal(value(s, 'aggregator_supplier_seconds_count', { supplier: 'CManRossko' }), 1, 'a task that never ran has no run time');
  t.ok(
    s.filter((x) => x.name.startsWith('aggregator_supplier_')).every((x) => x.labels.instance === 'unit'),
    'the instance label too',
  );
  t.equal(value(s, 'aggregator_tasks_ended_total'), undefined, '/stats and the task metrics are not touched');
  t.equal(stats.toJSON().taskTotal, 0);
});

t.test('at most aggregator.metrics.suppliers names; later ones are "other", a missing class "unknown"', async (t) => {
  const { stats, samples } = supplierRegistry(2);
  for (const name of ['A', 'B', 'C', 'A', 'D', 'B']) stats.supplierTask(name, 'succeeded', 10);
  stats.supplierTask(undefined, 'failed', 10);
  stats.supplierTask(undefined, 'failed');
  const s = await samples();
  const names = new Set(s.filter((x) => x.name === 'aggregator_supplier_tasks_total').map((x) => x.labels.supplier));
  t.same([...names].sort(), ['A', 'B', OTHER_SUPPLIER, UNKNOWN_SUPPLIER].sort(), 'the first two names, other, unknown');
  t.equal(value(s, 'aggregator_supplier_tasks_total', { supplier: 'A' }), 2, 'a kept name keeps counting');
  t.equal(value(s, 'aggregator_supplier_tasks_total', { supplier: 'B' }), 2, 'also after the limit was reached');
  t.equal(value(s, 'aggregator_supplier_tasks_total', { supplier: OTHER_SUPPLIER }), 2, 'C and D');
  t.equal(value(s, 'aggregator_supplier_tasks_total', { supplier: UNKNOWN_SUPPLIER, outcome: 'failed' }), 2);
  t.equal(value(s, 'aggregator_supplier_seconds_count', { supplier: OTHER_SUPPLIER }), 2);
  t.equal(value(s, 'aggregator_supplier_seconds_count', { supplier: UNKNOWN_SUPPLIER }), 1);

  const label = supplierLabels(1);
  t.equal(label('x'.repeat(500)), 'x'.repeat(100), 'a very long class is cut to 100 characters');
  t.equal(label('x'.repeat(300)), 'x'.repeat(100), 'and counts as the same name');
  t.equal(label(''), UNKNOWN_SUPPLIER, 'an empty class is unknown, and takes no place');
  t.equal(label('y'), OTHER_SUPPLIER);
});

t.test('supplierClass and supplierOutcome: what the task flow passes in', async (t) => {
  t.equal(supplierClass({ class: 'CManArmtek', params: { apikey: 'k' } }), 'CManArmtek');
  for (const bad of [{}, { class: 7 }, { class: '' }, { class: null }, { class: { name: 'x' } }, undefined])
    t.equal(supplierClass(bad), undefined, JSON.stringify(bad) ?? 'undefined');
  t.equal(supplierClass(JSON.parse('{"__proto__":{"class":"x"}}') as Record<string, unknown>), undefined, 'only an own class field');
  t.equal(supplierOutcome(), 'succeeded');
  const byOutcome = (o: string) => ERROR_CODES.filter((c) => supplierOutcome(c) === o).sort();
  t.same(byOutcome('cancelled'), ['E_SCRIPT_CANCELLED', 'E_SERVER_SHUTDOWN', 'E_SESSION_CLOSED', 'E_SESSION_TIMEOUT', 'E_TOO_MANY_SESSIONS']);
  for (const code of ['E_SCRIPT_TIMEOUT', 'E_SCRIPT_ERROR', 'E_SCRIPT_START', 'E_ITEMS_JSON', 'E_ITEMS_RESPONSE', 'E_UNKNOWN'] as const)
    t.equal(supplierOutcome(code), 'failed', `${code}: the supplier's script failed`);
});
