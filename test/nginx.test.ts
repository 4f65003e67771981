// The shipped nginx configs (docs/install.md, docs/scaling.md), unchanged but for ports, in front
// of real aggregators. Searches, /stats, echo and the demo page go through the /ws/ prefix; with
// the upstream config the searches spread over both instances.
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { ROOT, type TestServer, demoRequest, invariantViolations, search, startServer } from './helpers/harness.js';
import { startNginx } from './helpers/nginx.js';

const SINGLE = fs.readFileSync(path.join(ROOT, 'etc', 'nginx', 'aggregator.conf'), 'utf8');
const UPSTREAM = fs.readFileSync(path.join(ROOT, 'etc', 'nginx', 'aggregator-upstream.conf'), 'utf8');
const HAS_PAGE = fs.existsSync(path.join(ROOT, 'public', 'index.html'));

/** Replaces `from` (which must occur) in a shipped config. */
function swap(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  if (out === text) throw new Error(`the shipped config no longer contains ${String(from)}`);
  return out;
}

async function server(t: Test): Promise<TestServer> {
  const srv = await startServer();
  t.teardown(async () => {
    await srv.close();
    fs.rmSync(srv.logDir, { recursive: true, force: true });
  });
  return srv;
}

/** error-level lines other than the /ws/metrics denials we provoke on purpose. */
const nginxErrors = (log: string) =>
  log.split('\n').filter((l) => /\[(error|crit|alert|emerg)\]/.test(l) && !l.includes('access forbidden by rule'));

const stats = async (base: string) => (await (await fetch(`${base}/stats`)).json()) as Record<string, number>;

function echo(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let got = '';
    ws.on('message', (d) => (got += String(d)));
    ws.on('close', () => resolve(got));
    ws.on('error', reject);
  });
}

t.test('the read timeout outlasts a search', async (t) => {
  for (const [name, text] of [
    ['aggregator.conf', SINGLE],
    ['aggregator-upstream.conf', UPSTREAM],
  ] as const) {
    const m = /proxy_read_timeout\s+(\d+)s;/.exec(text);
    t.ok(m && Number(m[1]) > 30, `${name}: proxy_read_timeout ${m?.[1]}s > the 30 s default session timeout`);
  }
});

t.test('aggregator.conf in a server block: search, stats, echo and the page under /ws/', async (t) => {
  const a = await server(t);
  const nginx = await startNginx((port) =>
    [`  server {`, `    listen 127.0.0.1:${port};`, swap(SINGLE, 'http://127.0.0.1:8000/', `http://127.0.0.1:${a.port}/`), `  }`].join('\n'),
  );
  t.teardown(() => nginx.stop());

  const res = await search(`ws://${nginx.base}`, demoRequest('analog'), { path: '/ws/ws' });
  t.same(invariantViolations(res.frames), []);
  t.equal(res.closeCode, 1000, 'close code 1000 passes through nginx');
  t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' });
  t.equal(res.frames.filter((f) => f._status === 'SENDING').length, 15, 'analog: 5 suppliers × 3 items');

  const s = await stats(`http://${nginx.base}/ws`);
  t.equal(s.sessionTotal, 1, '/ws/stats is the instance /stats');
  t.equal(JSON.parse(await echo(`ws://${nginx.base}/ws/echo?echo=xyz`)).aggregator.php.echo, 'xyz', '/ws/echo');

  const bare = await fetch(`http://${nginx.base}/ws`, { redirect: 'manual' });
  t.equal(bare.status, 301);
  t.match(bare.headers.get('location') ?? '', /\/ws\/$/);
  t.equal((await fetch(`http://${nginx.base}/ws/metrics`)).status, 403, '/ws/metrics is not public');
  t.equal((await fetch(`${a.httpBase}/metrics`)).status, 200, 'Prometheus still scrapes the instance');

  const page = await fetch(`http://${nginx.base}/ws/`);
  if (HAS_PAGE) {
    t.equal(page.status, 200, 'the demo page at /ws/');
    t.match(page.headers.get('content-type') ?? '', /text\/html/);
  } else {
    await page.arrayBuffer();
    t.comment('public/index.html does not exist yet: demo page assertion skipped');
  }
  t.same(nginxErrors(nginx.errorLog()), [], 'no errors in the nginx error log');
});

t.test('aggregator-upstream.conf: searches spread over two instances', async (t) => {
  const a = await server(t);
  const b = await server(t);
  const nginx = await startNginx((port) => {
    let conf = swap(UPSTREAM, /listen 80;/, `listen 127.0.0.1:${port};`);
    conf = swap(conf, /server 127\.0\.0\.1:8001 /, `server 127.0.0.1:${a.port} `);
    conf = swap(conf, /server 127\.0\.0\.1:8002 /, `server 127.0.0.1:${b.port} `);
    return conf;
  });
  t.teardown(() => nginx.stop());

  // Concurrent searches (least_conn sends each to the less busy instance), then sequential ones.
  const together = await Promise.all(
    ['normal', 'analog', 'normal', 'itemsError'].map((c) => search(`ws://${nginx.base}`, demoRequest(c), { path: '/ws/ws' })),
  );
  const oneByOne = [];
  for (const c of ['normal', 'emptyItems', 'normal', 'analog']) oneByOne.push(await search(`ws://${nginx.base}`, demoRequest(c), { path: '/ws/ws' }));
  for (const res of [...together, ...oneByOne]) {
    t.same(invariantViolations(res.frames), []);
    t.equal(res.closeCode, 1000);
    t.equal(res.frames.at(-1)?._status, 'SUCCESS');
  }
  const [sa, sb] = [await stats(a.httpBase), await stats(b.httpBase)];
  t.equal((sa.sessionTotal ?? 0) + (sb.sessionTotal ?? 0), 8, 'every search reached one instance');
  t.ok((sa.sessionTotal ?? 0) >= 2 && (sb.sessionTotal ?? 0) >= 2, `spread: ${sa.sessionTotal} on A, ${sb.sessionTotal} on B`);

  const viaNginx = new Set<number>();
  for (let i = 0; i < 4; i++) viaNginx.add((await stats(`http://${nginx.base}/ws`)).sessionTotal ?? -1);
  t.ok([...viaNginx].every((n) => n === sa.sessionTotal || n === sb.sessionTotal), '/ws/stats answers from an instance');
  t.equal((await fetch(`http://${nginx.base}/ws/metrics`)).status, 403);
  t.same(nginxErrors(nginx.errorLog()), [], 'no errors in the nginx error log');
});
