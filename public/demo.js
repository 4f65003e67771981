// The demo page (docs/scripts.md, The demo scripts): one card per search, live task rows and
// items, /stats with a chart, the echo form. Built only on ./client.js; no other code and no network beyond the aggregator.
import { echo, search } from './client.js';

// What each scenario must end with (docs/scripts.md's scenario tables, docs/protocol.md and
// docs/errors.md): the session's end, the close code, and where the outcome is fixed, the item
// count and the task errors by code.
const SCENARIOS = [
  { name: 'normal', about: 'suppliers normal-1…3, 3 items each', expect: { end: 'SUCCESS', close: 1000, items: 9, errors: {} } },
  { name: 'analog', about: 'analog-3 names normal-1 and normal-2 again', expect: { end: 'SUCCESS', close: 1000, items: 15, errors: {} } },
  {
    name: 'mixed',
    about: 'one supplier of each kind',
    expect: { end: 'SUCCESS', close: 1000, items: 12, errors: { E_SCRIPT_ERROR: 1, E_SCRIPT_TIMEOUT: 1, E_ITEMS_JSON: 1, E_ITEMS_RESPONSE: 1 } },
  },
  { name: 'emptySuppliers', about: 'an empty supplier list', expect: { end: 'SUCCESS', close: 1000, items: 0, errors: {} } },
  { name: 'suppliersTimeout', about: 'suppliers script sleeps past the timeout', expect: { end: 'E_SCRIPT_TIMEOUT', close: 1000 } },
  { name: 'suppliersError', about: 'suppliers script exits non-zero', expect: { end: 'E_SCRIPT_ERROR', close: 1000 } },
  { name: 'suppliersNotJson', about: 'suppliers script prints text', expect: { end: 'E_SUPPLIERS_JSON', close: 1000 } },
  { name: 'suppliersBadResponse', about: 'JSON without suppliers', expect: { end: 'E_SUPPLIERS_RESPONSE', close: 1000 } },
  { name: 'emptyItems', about: 'three suppliers with no items', expect: { end: 'SUCCESS', close: 1000, items: 0, errors: {} } },
  { name: 'itemsTimeout', about: 'three items scripts time out', expect: { end: 'SUCCESS', close: 1000, items: 0, errors: { E_SCRIPT_TIMEOUT: 3 } } },
  { name: 'itemsError', about: 'two items scripts exit non-zero', expect: { end: 'SUCCESS', close: 1000, items: 0, errors: { E_SCRIPT_ERROR: 2 } } },
  { name: 'itemsBadJson', about: 'two items scripts print text', expect: { end: 'SUCCESS', close: 1000, items: 0, errors: { E_ITEMS_JSON: 2 } } },
  { name: 'itemsBadResponse', about: 'JSON without items', expect: { end: 'SUCCESS', close: 1000, items: 0, errors: { E_ITEMS_RESPONSE: 2 } } },
  { name: 'sessionTimeout', about: 'normal-1 and 2000 slow suppliers', expect: { end: 'E_SESSION_TIMEOUT', close: 4408 } },
  { name: 'analogLoop', about: 'a supplier that names itself forever', expect: { end: 'E_SESSION_TIMEOUT', close: 4408 } },
  {
    name: 'bad JSON',
    about: 'a request that is not JSON',
    build: () => '{"code":"normal","brand":',
    expect: { end: 'E_REQUEST_JSON', close: 4400 },
  },
  {
    name: 'missing field',
    about: 'a request without apikey and analog',
    build: (req) => ({ code: req.code, brand: req.brand }),
    expect: { end: 'E_ILLEGAL_REQUEST', close: 4400 },
  },
  { name: 'close at once', about: 'the page closes the socket right after sending', closeAtOnce: true, expect: { end: 'CLOSED' } },
];

const MAX_TASK_ROWS = 40;
const MAX_ITEM_ROWS = 120;
const PREFERRED_COLUMNS = ['code', 'brand', 'name', 'price', 'quantity', 'supplier'];

const $ = (sel, root = document) => root.querySelector(sel);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== undefined && child !== null) node.append(child);
  return node;
}
const fmtMs = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`);

function requestFromForm() {
  const form = $('#search-form');
  const data = Object.fromEntries(new FormData(form).entries());
  const analog = Number(data.analog);
  return { code: data.code, brand: data.brand, apikey: data.apikey, analog: Number.isFinite(analog) && data.analog !== '' ? analog : data.analog };
}

/** The label of a task row: the supplier's info, shortened for the demo's {"supplier": …}. */
function supplierLabel(task) {
  if (task.kind === 'SUPPLIERS') return 'suppliers script';
  const info = task.info;
  if (info === undefined) return '—';
  if (info && typeof info === 'object' && !Array.isArray(info)) {
    const name = info.supplier ?? info.name ?? info.class;
    if (typeof name === 'string' || typeof name === 'number') return String(name);
  }
  return typeof info === 'string' ? info : JSON.stringify(info);
}

/** The request as sent, with the apikey masked (screenshots get shared). */
function shownRequest(request) {
  if (typeof request === 'string') return request;
  return JSON.stringify('apikey' in request ? { ...request, apikey: '•••' } : request);
}

function badge(status, error) {
  const cls = status === 'ERROR' && error === 'E_SCRIPT_CANCELLED' ? 'cancelled' : status.toLowerCase();
  return el('span', { class: `badge ${cls}`, text: error ? `${status} ${error}` : status });
}

/** A task answered from the items cache: its SUCCESS frame carries `_cached: true`. */
const cachedBadge = () => el('span', { class: 'badge cached', text: 'cached', title: 'answered from the items cache: no script ran' });

// ---------------------------------------------------------------- one search = one card

const running = new Set();
let runSeq = 0;

class Run {
  constructor(scenario, request) {
    this.scenario = scenario;
    this.request = request;
    this.id = ++runSeq;
    this.rows = new Map();
    this.counts = { PENDING: 0, SENDING: 0, SUCCESS: 0, ERROR: 0 };
    this.cached = 0;
    this.errors = {};
    this.hiddenTasks = 0;
    this.itemRows = 0;
    this.columns = undefined;
    this.build();
  }

  build() {
    const s = this.scenario;
    this.status = el('span', { class: 'badge running', text: 'RUNNING' });
    this.elapsed = el('span', { class: 'elapsed', text: '0 ms' });
    this.closeInfo = el('span', { class: 'close muted' });
    this.verdict = el('span', { class: 'verdict' });
    this.taskSummary = el('span', { class: 'task-summary muted', text: 'no tasks yet' });
    this.requestLine = el('code', { class: 'request-line', text: `→ ${shownRequest(this.request)}` });
    this.taskBody = el('tbody');
    this.moreTasks = el('p', { class: 'more muted', hidden: '' });
    this.itemHead = el('tr');
    this.itemBody = el('tbody');
    this.moreItems = el('p', { class: 'more muted', hidden: '' });
    this.itemCount = el('span', { class: 'count', text: '0' });
    this.itemsBox = el(
      'details',
      { class: 'items', open: '' },
      el('summary', {}, 'Items ', this.itemCount),
      el('div', { class: 'table-scroll' }, el('table', { class: 'item-table' }, el('thead', {}, this.itemHead), this.itemBody)),
      this.moreItems,
    );
    this.itemsBox.hidden = true;
    this.card = el(
      'article',
      { class: 'run', 'data-scenario': s.name, 'data-run': String(this.id), 'data-state': 'running' },
      el(
        'header',
        { class: 'run-head' },
        el('div', { class: 'run-title' }, el('h3', { text: s.name }), el('span', { class: 'muted about', text: s.about })),
        el('div', { class: 'run-meta' }, this.status, this.elapsed),
      ),
      this.requestLine,
      el('div', { class: 'run-sub' }, this.taskSummary, this.closeInfo, this.verdict),
      (this.taskBox = el(
        'div',
        { class: 'table-scroll tasks', hidden: '' },
        el(
          'table',
          { class: 'task-table' },
          el('thead', {}, el('tr', {}, ...['#', 'task', 'status', 'items'].map((h) => el('th', { text: h })))),
          this.taskBody,
        ),
      )),
      this.moreTasks,
      this.itemsBox,
    );
    $('#results').prepend(this.card);
  }

  start() {
    this.started = performance.now();
    running.add(this);
    const closeAtOnce = this.scenario.closeAtOnce;
    this.handle = search(this.request, {
      onSent: (h) => {
        if (closeAtOnce) h.close();
      },
      onTask: (task, frame) => this.onTask(task, frame),
      onItem: (item, task) => this.onItem(item, task),
      onNotice: (frame) => this.note(`notice: ${frame._error}`),
      onEnd: (end) => this.onEnd(end),
    });
    return this.handle.done;
  }

  note(text) {
    this.closeInfo.textContent = text;
  }

  onTask(task, frame) {
    let row = this.rows.get(task.id);
    const prev = row ? row.status : undefined;
    if (prev) this.counts[prev]--;
    this.counts[task.status]++;
    if (task.status === 'ERROR') this.errors[task.error] = (this.errors[task.error] ?? 0) + 1;
    const cached = task.status === 'SUCCESS' && frame?._cached === true;
    if (cached) this.cached++;
    if (!row) {
      row = { status: task.status, tr: undefined };
      this.rows.set(task.id, row);
      if (this.rows.size <= MAX_TASK_ROWS) {
        const parent = task.parent !== undefined ? el('span', { class: 'parent muted', text: ` ↳ of #${task.parent}` }) : undefined;
        row.statusCell = el('td', {}, badge(task.status, task.error));
        row.itemsCell = el('td', { class: 'num', text: String(task.items) });
        row.tr = el(
          'tr',
          { 'data-task': String(task.id), 'data-kind': task.kind },
          el('td', { class: 'num muted', text: String(task.id) }),
          el('td', { class: 'label', title: task.kind }, supplierLabel(task), parent),
          row.statusCell,
          row.itemsCell,
        );
        this.taskBody.append(row.tr);
        this.taskBox.hidden = false;
      } else {
        this.hiddenTasks++;
      }
    }
    row.status = task.status;
    if (row.tr) {
      row.tr.dataset.status = task.status;
      if (task.error) row.tr.dataset.error = task.error;
      row.statusCell.replaceChildren(badge(task.status, task.error), ...(cached ? [' ', cachedBadge()] : []));
      if (cached) row.tr.dataset.cached = 'true';
      row.itemsCell.textContent = String(task.items);
    }
    this.scheduleSummary();
  }

  onItem(item, task) {
    const row = this.rows.get(task.id);
    if (row && row.itemsCell) row.itemsCell.textContent = String(task.items);
    this.itemsBox.hidden = false;
    this.itemCount.textContent = String(this.handle ? this.handle.items : Number(this.itemCount.textContent) + 1);
    if (!this.columns) {
      const keys = Object.keys(item);
      this.columns = [...PREFERRED_COLUMNS.filter((k) => keys.includes(k)), ...keys.filter((k) => !PREFERRED_COLUMNS.includes(k))];
      this.itemHead.append(el('th', { text: 'task' }), ...this.columns.map((c) => el('th', { text: c })));
    }
    if (this.itemRows >= MAX_ITEM_ROWS) {
      this.moreItems.hidden = false;
      this.moreItems.textContent = `… and ${this.handle.items - this.itemRows} more items`;
      return;
    }
    this.itemRows++;
    const cells = this.columns.map((c) => {
      const v = item[c];
      const text = v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
      return el('td', { class: c === 'price' || c === 'quantity' ? 'num' : undefined, text });
    });
    this.itemBody.append(el('tr', { 'data-task': String(task.id) }, el('td', { class: 'num muted', text: `#${task.id}` }), ...cells));
  }

  // A big search sends thousands of frames; the summary is redrawn once per animation frame.
  scheduleSummary() {
    if (this.summaryFrame) return;
    this.summaryFrame = requestAnimationFrame(() => {
      this.summaryFrame = 0;
      this.renderSummary();
    });
  }

  renderSummary() {
    const c = this.counts;
    const parts = [];
    const total = this.rows.size;
    parts.push(`${total} task${total === 1 ? '' : 's'}`);
    if (c.SUCCESS) parts.push(`${c.SUCCESS} success${this.cached ? ` (${this.cached} cached)` : ''}`);
    if (c.ERROR) parts.push(`${c.ERROR} error`);
    if (c.PENDING + c.SENDING) parts.push(`${c.PENDING + c.SENDING} open`);
    this.taskSummary.textContent = parts.join(' · ');
    if (this.hiddenTasks > 0) {
      this.moreTasks.hidden = false;
      const errors = Object.entries(this.errors)
        .map(([code, n]) => `${n} ${code}`)
        .join(', ');
      this.moreTasks.textContent = `… ${this.hiddenTasks} more tasks not listed (all tasks: ${c.SUCCESS} SUCCESS, ${c.PENDING + c.SENDING} open${errors ? ', ' + errors : ''})`;
    }
  }

  tick(now) {
    this.elapsed.textContent = fmtMs(now - this.started);
  }

  onEnd(end) {
    running.delete(this);
    cancelAnimationFrame(this.summaryFrame);
    this.summaryFrame = 0;
    this.end = end;
    this.elapsed.textContent = fmtMs(end.ms);
    const label = end.status === 'CLOSED' ? 'CLOSED by page' : end.error ? `ERROR ${end.error}` : end.status;
    const cls = end.status === 'CLOSED' ? 'closed' : end.status === 'SUCCESS' ? 'success' : 'error';
    this.status.className = `badge session ${cls}`;
    this.status.textContent = label;
    this.closeInfo.textContent = `close ${end.closeCode}${end.closeReason ? ' ' + end.closeReason : ''}${end.session ? ` · session ${end.session}` : ''}`;
    if (this.rows.size === 0) this.taskSummary.textContent = 'no tasks';
    const expect = this.scenario.expect;
    const ok = expect ? this.matches(end) : undefined;
    if (expect) {
      this.verdict.textContent = ok ? '✓ as expected' : `✗ expected ${describeExpect(expect)}`;
      this.verdict.className = `verdict ${ok ? 'good' : 'bad'}`;
    }
    Object.assign(this.card.dataset, {
      state: 'ended',
      end: end.status,
      error: end.error ?? '',
      closeCode: String(end.closeCode),
      items: String(end.items),
      expected: ok === undefined ? 'none' : String(ok),
    });
    this.renderSummary();
    updateSummary();
  }

  matches(end) {
    const x = this.scenario.expect;
    const got = end.status === 'ERROR' ? end.error : end.status;
    if (got !== x.end) return false;
    if (x.close !== undefined && end.closeCode !== x.close) return false;
    if (x.items !== undefined && end.items !== x.items) return false;
    if (x.errors) {
      const want = Object.entries(x.errors).filter(([, n]) => n > 0);
      const have = Object.entries(this.errors);
      if (want.length !== have.length || want.some(([code, n]) => this.errors[code] !== n)) return false;
    }
    return true;
  }
}

function describeExpect(x) {
  const parts = [x.end === 'SUCCESS' || x.end === 'CLOSED' ? x.end : `ERROR ${x.end}`];
  if (x.close !== undefined) parts.push(`close ${x.close}`);
  if (x.items !== undefined) parts.push(`${x.items} items`);
  const errors = Object.entries(x.errors ?? {});
  if (errors.length) parts.push(errors.map(([c, n]) => `${n}× ${c}`).join(', '));
  return parts.join(', ');
}

function newRun(scenario) {
  const base = requestFromForm();
  const request = scenario.build ? scenario.build(base) : { ...base, code: scenario.code ?? scenario.name };
  return new Run(scenario, request);
}

function runScenario(scenario) {
  const run = newRun(scenario);
  updateSummary();
  return run.start();
}

function updateSummary() {
  const cards = [...document.querySelectorAll('#results .run')];
  if (cards.length === 0) return void ($('#summary').textContent = '');
  const ended = cards.filter((c) => c.dataset.state === 'ended');
  const good = ended.filter((c) => c.dataset.expected === 'true').length;
  const bad = ended.filter((c) => c.dataset.expected === 'false').length;
  const summary = $('#summary');
  summary.textContent = `${ended.length}/${cards.length} ended · ${good} as expected${bad ? ` · ${bad} unexpected` : ''}`;
  summary.className = `summary ${bad ? 'bad' : ended.length === cards.length ? 'good' : ''}`;
}

// ---------------------------------------------------------------- /stats and the chart

// Two panels on one canvas, each with its own scale: a handful of sessions would vanish under
// thousands of queued tasks on a shared axis.
const PANELS = [
  { title: 'sessions', series: [{ key: 'sessionAlive', label: 'sessions alive', color: '#4f46e5' }] },
  {
    title: 'tasks',
    series: [
      { key: 'taskQueued', label: 'tasks queued', color: '#f59e0b' },
      { key: 'taskRunning', label: 'tasks running', color: '#0891b2' },
    ],
  },
];
const SERIES = PANELS.flatMap((p) => p.series);
/** The window grows from one minute (a fresh page) to five ("the last minutes"). */
const MIN_WINDOW_S = 60;
const MAX_WINDOW_S = 300;
const history = [];

function drawChart() {
  const canvas = $('#chart');
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 560;
  const height = canvas.clientHeight || 170;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const now = Date.now();
  const span = history.length ? (now - history[0].t) / 1000 : 0;
  const windowS = Math.min(MAX_WINDOW_S, Math.max(MIN_WINDOW_S, Math.ceil(span / 60) * 60));
  const visible = history.filter((p) => now - p.t <= windowS * 1000);
  const pad = { l: 40, r: 8, t: 6, b: 18, gap: 14 };
  const w = width - pad.l - pad.r;
  const panelH = (height - pad.t - pad.b - pad.gap * (PANELS.length - 1)) / PANELS.length;
  const xOf = (t) => pad.l + w - (w * (now - t)) / (windowS * 1000);
  ctx.font = '11px system-ui, sans-serif';
  ctx.lineWidth = 1;

  PANELS.forEach((panel, i) => {
    const y0 = pad.t + i * (panelH + pad.gap);
    const top = niceCeil(Math.max(2, ...visible.flatMap((p) => panel.series.map((s) => p[s.key]))));
    const yOf = (v) => y0 + panelH - (panelH * v) / top;
    ctx.strokeStyle = '#e6e9ef';
    ctx.fillStyle = '#8a94a6';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const v of [0, top / 2, top]) {
      const y = Math.round(yOf(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.l, y);
      ctx.lineTo(pad.l + w, y);
      ctx.stroke();
      ctx.fillText(String(Math.round(v)), pad.l - 6, y);
    }
    ctx.save();
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    ctx.fillStyle = '#a0a8b8';
    ctx.fillText(panel.title, pad.l + 4, y0 + 1);
    ctx.restore();
    for (const s of panel.series) {
      if (visible.length === 0) break;
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 2;
      ctx.lineJoin = 'round';
      ctx.beginPath();
      visible.forEach((p, j) => (j === 0 ? ctx.moveTo(xOf(p.t), yOf(p[s.key])) : ctx.lineTo(xOf(p.t), yOf(p[s.key]))));
      if (visible.length === 1) ctx.lineTo(xOf(visible[0].t) - 3, yOf(visible[0][s.key]));
      ctx.stroke();
      ctx.lineWidth = 1;
    }
  });

  ctx.fillStyle = '#8a94a6';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const step = windowS <= 60 ? 15 : 60;
  for (let ago = 0; ago <= windowS; ago += step) {
    const x = pad.l + w - (w * ago) / windowS;
    const label = ago === 0 ? 'now' : ago % 60 === 0 ? `-${ago / 60}m` : `-${ago}s`;
    ctx.textAlign = ago === 0 ? 'right' : ago === windowS ? 'left' : 'center';
    ctx.fillText(label, x, height - pad.b + 4);
  }
  canvas.dataset.samples = String(visible.length);
  canvas.dataset.window = String(windowS);
}

function niceCeil(v) {
  const step = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= v) return m * step;
  return 10 * step;
}

async function pollStats() {
  const health = $('#health');
  try {
    const res = await fetch('stats', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const stats = await res.json();
    for (const node of document.querySelectorAll('[data-stat]')) {
      const v = stats[node.dataset.stat];
      if (v !== undefined) node.textContent = String(v);
    }
    $('#uptime').textContent = `uptime ${stats.uptime}`;
    health.textContent = 'online';
    health.className = 'health up';
    history.push({
      t: Date.now(),
      sessionAlive: stats.sessionAlive,
      taskRunning: stats.taskRunning,
      taskQueued: Math.max(0, stats.taskPending - stats.taskRunning),
    });
    while (history.length && Date.now() - history[0].t > MAX_WINDOW_S * 1000 + 2000) history.shift();
    $('#figures').dataset.updates = String(Number($('#figures').dataset.updates ?? 0) + 1);
  } catch (err) {
    health.textContent = 'offline';
    health.className = 'health down';
    health.title = String(err && err.message);
  }
  drawChart();
}

// ---------------------------------------------------------------- wiring

function setup() {
  const box = $('#scenarios');
  for (const s of SCENARIOS) {
    box.append(
      el('button', {
        type: 'button',
        class: `chip${s.build || s.closeAtOnce ? ' faulty' : ''}`,
        'data-scenario': s.name,
        title: `${s.about} — expected: ${describeExpect(s.expect)}`,
        text: s.name,
        onclick: () => runScenario(s),
      }),
    );
  }
  $('#send-all').addEventListener('click', () => {
    // Cards are prepended: build them last-first so they read in table order, then start
    // the searches in table order.
    const runs = SCENARIOS.slice().reverse().map(newRun).reverse();
    updateSummary();
    for (const run of runs) run.start();
  });
  $('#clear').addEventListener('click', () => {
    for (const run of running) run.handle.close();
    $('#results').replaceChildren();
    updateSummary();
  });
  $('#search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const req = requestFromForm();
    runScenario({ name: `search ${req.code}`, about: JSON.stringify({ ...req, apikey: '…' }), build: () => req, expect: undefined });
  });
  $('#echo-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const out = $('#echo-out');
    const value = String(new FormData(ev.target).get('echo') ?? '');
    out.textContent = '…';
    out.className = 'echo-out';
    const res = await echo({ echo: value });
    out.textContent = `${JSON.stringify(res.answer)}\n(close ${res.closeCode}${res.closeReason ? ' ' + res.closeReason : ''})`;
    out.className = `echo-out ${res.ok ? 'good' : 'bad'}`;
    out.dataset.ok = String(res.ok);
  });
  const legend = $('#legend');
  for (const s of SERIES) legend.append(el('li', {}, el('i', { style: `background:${s.color}` }), s.label));
  setInterval(() => {
    const now = performance.now();
    for (const run of running) run.tick(now);
  }, 100);
  pollStats();
  setInterval(pollStats, 1000);
  window.addEventListener('resize', drawChart);
}

setup();
