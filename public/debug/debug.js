// The /debug page: lays out the session chart (debug/machine) and the task chart
// (debug/task-machine) with elkjs (served by the aggregator as debug/elk.js, global ELK), draws
// them as SVG, and polls debug/sessions every second for the live counts and the session table.
const SVG = 'http://www.w3.org/2000/svg';
// Fonts used to measure text for the layout; debug.css draws with the same ones.
const FONT = '600 14px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
const SMALL = '11.5px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
const MONO = '11.5px ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace';
const ANY = '__any__';

const measureCtx = document.createElement('canvas').getContext('2d');
function textWidth(text, font = FONT) {
  measureCtx.font = font;
  return Math.ceil(measureCtx.measureText(text).width);
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The small grey lines under a state's name: its entry actions, what it invokes, its internal events. */
function detailLines(state) {
  const lines = [];
  if (state.entry.length) lines.push(`entry / ${state.entry.join(', ')}`);
  if (state.invokes?.length) lines.push(`invoke / ${state.invokes.join(', ')}`);
  if (state.internal.length) lines.push(`↻ ${state.internal.join(', ')}`);
  return lines;
}

/** "src as id" for each actor invoked at `stateId`. */
function invokesAt(chart, stateId) {
  return chart.invokes.filter((i) => i.state === stateId).map((i) => `${i.src} as ${i.id}`);
}

function headHeight(state) {
  return 36 + 16 * detailLines(state).length;
}

/** The ELK graph of the chart: states (compound ones hold their children), an initial dot per
 *  level, an "any state" node for the root's own transitions, one edge per transition. */
function elkGraph(chart) {
  const byId = new Map();
  const root = {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.layered.spacing.nodeNodeBetweenLayers': '46',
      'elk.spacing.nodeNode': '26',
      'elk.spacing.edgeLabel': '4',
      'elk.spacing.edgeNode': '16',
      'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
      'elk.json.shapeCoords': 'ROOT',
      'elk.json.edgeCoords': 'ROOT',
    },
    children: [],
    edges: [],
  };
  const containerOf = (parentId) => (parentId ? byId.get(parentId) : root);
  for (const state of chart.states) {
    state.invokes = invokesAt(chart, state.id);
    const lines = detailLines(state);
    const width = Math.max(textWidth(state.key) + 64, ...lines.map((l) => textWidth(l, SMALL) + 24), 120);
    const node = { id: state.id, width, height: headHeight(state) + 6, children: [], edges: [] };
    if (state.type === 'compound' || state.type === 'parallel') {
      node.layoutOptions = { 'elk.padding': `[top=${headHeight(state) + 12},left=18,bottom=18,right=18]` };
    }
    byId.set(state.id, node);
  }
  for (const state of chart.states) containerOf(state.parent).children.push(byId.get(state.id));
  for (const node of byId.values()) if (node.children.length === 0) delete node.children;

  let n = 0;
  const edge = (source, target, label) => {
    const e = { id: `e${n++}`, sources: [source], targets: [target] };
    if (label) e.labels = [{ id: `${e.id}:label`, text: label, width: textWidth(label, MONO) + 10, height: 17 }];
    root.edges.push(e);
  };
  if (chart.initial) {
    root.children.push({ id: 'init:root', width: 14, height: 14 });
    edge('init:root', chart.initial);
  }
  for (const state of chart.states) {
    if (!state.initial) continue;
    const container = byId.get(state.id);
    container.children = container.children ?? [];
    container.children.push({ id: `init:${state.id}`, width: 12, height: 12 });
    edge(`init:${state.id}`, state.initial);
  }
  if (chart.transitions.some((t) => t.source === chart.id)) root.children.push({ id: ANY, width: 104, height: 34 });
  for (const t of chart.transitions) {
    const source = t.source === chart.id ? ANY : t.source;
    edge(source, t.target, t.guard ? `${t.event} [${t.guard}]` : t.event);
  }
  return root;
}

function roundedPath(points, r = 6) {
  let d = `M${points[0].x},${points[0].y}`;
  for (let i = 1; i < points.length - 1; i++) {
    const [a, b, c] = [points[i - 1], points[i], points[i + 1]];
    const d1 = Math.min(r, Math.hypot(b.x - a.x, b.y - a.y) / 2);
    const d2 = Math.min(r, Math.hypot(c.x - b.x, c.y - b.y) / 2);
    const p1 = { x: b.x - (Math.sign(b.x - a.x) * d1 || 0), y: b.y - (Math.sign(b.y - a.y) * d1 || 0) };
    const p2 = { x: b.x + (Math.sign(c.x - b.x) * d2 || 0), y: b.y + (Math.sign(c.y - b.y) * d2 || 0) };
    d += ` L${p1.x},${p1.y} Q${b.x},${b.y} ${p2.x},${p2.y}`;
  }
  const last = points[points.length - 1];
  return `${d} L${last.x},${last.y}`;
}

function draw(chart, layout) {
  const states = new Map(chart.states.map((s) => [s.id, s]));
  const pad = 12;
  const root = svg('svg', {
    viewBox: `${-pad} ${-pad} ${layout.width + 2 * pad} ${layout.height + 2 * pad}`,
    width: layout.width + 2 * pad,
    height: layout.height + 2 * pad,
    role: 'img',
    'data-machine': chart.id,
  });
  const defs = svg('defs');
  const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  marker.append(svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#64748b' }));
  defs.append(marker);
  root.append(defs);
  const nodeLayer = svg('g', { class: 'nodes' });
  const edgeLayer = svg('g', { class: 'edges' });
  root.append(nodeLayer, edgeLayer);

  const drawNode = (node) => {
    const { x, y, width: w, height: h } = node;
    if (node.id === 'init:root' || node.id.startsWith('init:')) {
      nodeLayer.append(svg('circle', { class: 'initial', cx: x + w / 2, cy: y + h / 2, r: w / 2 }));
      return;
    }
    if (node.id === ANY) {
      const g = svg('g', { class: 'any' });
      g.append(svg('rect', { x, y, width: w, height: h, rx: h / 2 }));
      g.append(svg('text', { x: x + w / 2, y: y + h / 2 + 4, 'text-anchor': 'middle' }, 'any state'));
      nodeLayer.append(g);
      return;
    }
    const state = states.get(node.id);
    const compound = !!node.children?.length;
    const g = svg('g', { class: `state ${state.type}`, 'data-id': state.id, 'data-type': state.type });
    g.append(svg('rect', { class: 'box', x, y, width: w, height: h, rx: compound ? 12 : 9 }));
    if (state.type === 'final') g.append(svg('rect', { class: 'inner', x: x + 3.5, y: y + 3.5, width: w - 7, height: h - 7, rx: 6 }));
    g.append(svg('text', { class: 'name', x: x + 12, y: y + 23 }, state.key));
    detailLines(state).forEach((line, i) => g.append(svg('text', { class: 'detail', x: x + 12, y: y + 41 + 16 * i }, line)));
    const pill = svg('g', { class: 'count', transform: `translate(${x + w - 22},${y + 18})` });
    pill.append(svg('rect', { x: -14, y: -10, width: 28, height: 20, rx: 10 }));
    pill.append(svg('text', { class: 'n', x: 0, y: 4, 'text-anchor': 'middle' }, '0'));
    g.append(pill);
    nodeLayer.append(g);
    for (const child of node.children ?? []) drawNode(child);
  };
  for (const child of layout.children) drawNode(child);

  const edges = [];
  const collect = (node) => {
    for (const e of node.edges ?? []) edges.push(e);
    for (const c of node.children ?? []) collect(c);
  };
  collect(layout);
  for (const e of edges) {
    const g = svg('g', { class: 'edge', 'data-source': e.sources[0], 'data-target': e.targets[0] });
    for (const s of e.sections ?? []) {
      const points = [s.startPoint, ...(s.bendPoints ?? []), s.endPoint];
      g.append(svg('path', { d: roundedPath(points), 'marker-end': 'url(#arrow)' }));
    }
    for (const l of e.labels ?? []) {
      g.append(svg('rect', { class: 'label-bg', x: l.x, y: l.y, width: l.width, height: l.height, rx: 4 }));
      g.append(svg('text', { class: 'label', x: l.x + 5, y: l.y + 12.5 }, l.text));
    }
    edgeLayer.append(g);
  }
  return root;
}

function fmtAge(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)}m ${Math.floor((ms % 60000) / 1000)}s`;
}

/** Live counts on one drawn chart: live ones in each state, ended ones on final states. */
function updateCounts(box, byState, endedBy) {
  for (const g of box.querySelectorAll('g.state')) {
    const id = g.dataset.id;
    const live = byState[id] ?? 0;
    const ended = endedBy[id] ?? 0;
    const final = g.dataset.type === 'final';
    const shown = final && live === 0 ? ended : live;
    g.dataset.live = String(live);
    g.dataset.ended = String(ended);
    g.classList.toggle('active', live > 0);
    g.classList.toggle('has-ended', final && live === 0 && ended > 0);
    g.querySelector('.count .n').textContent = String(shown);
    g.querySelector('.count').setAttribute('aria-label', final ? `${live} live, ${ended} ended` : `${live} live`);
  }
}

function update(chart, taskChart, data) {
  const short = (id) => (id.startsWith(`${chart.id}.`) ? id.slice(chart.id.length + 1) : id);
  updateCounts(document.querySelector('#chart'), data.byState, data.ended);
  updateCounts(document.querySelector('#task-chart'), data.tasks.byState, data.tasks.ended);
  const taskLive = Object.values(data.tasks.byState).reduce((a, b) => a + b, 0);
  const stopped = data.tasks.ended[`${taskChart.id}.stopped`] ?? 0;
  document.querySelector('#task-summary').textContent = `${taskLive} live · ${stopped} stopped by their session`;
  const tbody = document.querySelector('#sessions tbody');
  const rows = data.sessions.map((s) => {
    const tr = document.createElement('tr');
    tr.dataset.session = s.id;
    tr.dataset.state = s.state.join(' ');
    const cells = [s.id, s.state.map(short).join(', '), fmtAge(s.ageMs), s.tasks.queued, s.tasks.running, s.tasks.finished, s.tasks.created];
    cells.forEach((v, i) => {
      const td = document.createElement('td');
      td.textContent = String(v);
      if (i >= 2) td.className = 'num';
      if (i === 1) td.innerHTML = `<span class="state-tag">${td.innerHTML}</span>`;
      tr.append(td);
    });
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td colspan="7" class="muted empty">no live sessions — start one on the demo page</td>';
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
  const endedTotal = Object.values(data.ended).reduce((a, b) => a + b, 0);
  document.querySelector('#summary').textContent =
    `${data.total} live · ${endedTotal} ended since start${data.truncated ? ` · first ${data.sessions.length} listed` : ''} · ${new Date().toLocaleTimeString()}`;
}

async function drawInto(selector, url) {
  const chart = await (await fetch(url, { cache: 'no-store' })).json();
  const layout = await new ELK().layout(elkGraph(chart));
  const box = document.querySelector(selector);
  box.replaceChildren(draw(chart, layout));
  box.dataset.ready = 'true';
  return chart;
}

async function main() {
  const live = document.querySelector('#live');
  const [chart, taskChart] = await Promise.all([drawInto('#chart', 'debug/machine'), drawInto('#task-chart', 'debug/task-machine')]);
  document.querySelector('#machine-id').textContent = `#${chart.id}`;
  document.querySelector('#host').textContent = invokesAt(chart, chart.id).join(', ');
  document.querySelector('#task-machine-id').textContent = `#${taskChart.id}`;
  document.querySelector('#task-invokes').textContent = invokesAt(taskChart, taskChart.id).join(', ');
  const poll = async () => {
    try {
      const res = await fetch('debug/sessions', { cache: 'no-store' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      update(chart, taskChart, await res.json());
      live.textContent = 'live';
      live.className = 'health up';
    } catch (err) {
      live.textContent = 'offline';
      live.className = 'health down';
      live.title = String(err && err.message);
    }
  };
  await poll();
  setInterval(poll, 1000);
}

main().catch((err) => {
  document.querySelector('#chart').textContent = `Cannot draw the charts: ${err && err.message}`;
  console.error(err);
});
