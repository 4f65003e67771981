// A browser that stops reading while its search streams a million items: the server queues at
// most aggregator.limit.send-buffer bytes for it (what the kernel has accepted is not queued),
// then ends the session as if the browser had closed it, and logs why. A browser that reads
// gets everything, however big the answer.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { StatsJson } from '../src/stats.js';
import { FIXTURES, demoRequest, startServer, waitFor } from './helpers/harness.js';
import { heapAfterGc, rssBytes } from './helpers/procs.js';
import { clientFrame, rawUpgrade } from './helpers/raw-ws.js';

const MB = 1024 * 1024;
const ONE_SUPPLIER = `/bin/echo '{"suppliers":[{"name":"s1"}]}'`;
const items = (n: number) => `${path.join(FIXTURES, 'many-items.sh')} ${n}`;
const stats = async (base: string) => (await (await fetch(`${base}/stats`)).json()) as StatsJson;

for (const limit of ['16MB', '64KB']) {
  t.test(`a client that stops reading a million items (send-buffer ${limit})`, async (t) => {
    const srv = await startServer({
      'aggregator.script.suppliers': ONE_SUPPLIER,
      'aggregator.script.items': items(1_000_000),
      'aggregator.limit.send-buffer': limit,
      'aggregator.timeout.script': 10,
    });
    let closed = false;
    t.teardown(async () => {
      if (!closed) await srv.close();
    });
    const heap0 = heapAfterGc();
    const rss0 = rssBytes();

    const raw = await rawUpgrade(srv.port);
    raw.socket.on('error', () => {});
    raw.socket.pause(); // reads nothing from now on: the kernel buffers fill, then ours would
    raw.socket.write(clientFrame(1, JSON.stringify(demoRequest('million'))));

    t.ok(await waitFor(() => srv.agg.sessions.size === 0, 20_000), 'the session ended without the client reading');
    const s = await stats(srv.httpBase);
    t.match(s, { sessionAlive: 0, sessionFinished: 1, taskPending: 0, taskRunning: 0 }, 'its tasks ended too');
    t.equal((await fetch(`${srv.httpBase}/health`)).status, 200, 'the server is fine');
    raw.socket.resume();
    await Promise.race([raw.closed, new Promise((r) => setTimeout(r, 5000))]);
    t.ok(raw.socket.destroyed || raw.socket.readableEnded, 'the server dropped the connection');

    await srv.close();
    closed = true;
    const log = fs.readFileSync(path.join(srv.logDir, 'aggregator.log'), 'utf8').split('\n');
    const over = log.find((l) => l.includes('send buffer over limit'));
    t.ok(over, 'the overflow is logged');
    const entry = JSON.parse(over ?? '{}') as { buffered?: number; limit?: number };
    const bytes = limit === '16MB' ? 16 * MB : 64 * 1024;
    t.equal(entry.limit, bytes);
    // What was queued for the client when it was cut off: the limit plus at most one frame.
    t.ok((entry.buffered ?? Infinity) <= bytes + 1024, `at most the limit was queued (${entry.buffered} bytes)`);
    const ended = log.find((l) => l.includes('"session ended"'));
    t.match(ended, /E_SESSION_CLOSED/, 'the session ended as if the browser closed it');

    const heapGrowth = heapAfterGc() - heap0;
    t.ok(heapGrowth < 24 * MB, `heap back near its baseline (+${(heapGrowth / MB).toFixed(1)} MB)`);
    t.ok(rssBytes() - rss0 < 400 * MB, `RSS bounded (+${((rssBytes() - rss0) / MB).toFixed(0)} MB)`);
  });
}

t.test('a client that reads gets every one of 100,000 items', async (t) => {
  const srv = await startServer({
    'aggregator.script.suppliers': ONE_SUPPLIER,
    'aggregator.script.items': items(100_000),
    'aggregator.timeout.script': 10,
  });
  t.teardown(() => srv.close());
  // The reader runs in its own process: in this one it could not read while the server writes.
  const { stdout } = await promisify(execFile)(process.execPath, [
    path.join(FIXTURES, 'ws-reader.mjs'),
    `${srv.wsBase}/ws`,
    JSON.stringify(demoRequest('many')),
  ]);
  const res = JSON.parse(stdout) as { items: number; code: number; last: Record<string, unknown> };
  t.equal(res.items, 100_000, 'all items arrived');
  t.match(res.last, { _task: 'SESSION', _status: 'SUCCESS' });
  t.equal(res.code, 1000);
});
