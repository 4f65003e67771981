// src/heartbeat.ts on a real server with a short interval: a peer that answers no ping is
// terminated and its search ends as if the browser closed it (scripts killed, logged); a peer
// that answers stays connected for as long as its search runs.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import WebSocket from 'ws';
import { FIXTURES, demoRequest, processesMatching, startServer, waitFor } from './helpers/harness.js';

const INTERVAL = 150;
const slowSuppliers = (seconds: number, mark: string) => `${path.join(FIXTURES, 'slow-no-suppliers.sh')} ${seconds} ${mark}`;

interface Peer {
  ws: WebSocket;
  pings: number;
  closed: Promise<number>;
}

function connect(base: string, autoPong: boolean, request?: unknown): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base}/ws`, { autoPong });
    const peer: Peer = { ws, pings: 0, closed: new Promise((r) => ws.on('close', (code) => r(code))) };
    ws.on('ping', () => peer.pings++);
    ws.on('error', reject);
    ws.on('open', () => {
      if (request !== undefined) ws.send(JSON.stringify(request));
      resolve(peer);
    });
  });
}

t.test('a peer that answers no ping is terminated; its search ends as closed', async (t) => {
  const mark = `hb-${process.pid}-${Date.now()}`;
  const srv = await startServer({ 'aggregator.script.suppliers': slowSuppliers(20, mark), 'aggregator.timeout.script': 30, 'aggregator.timeout.session': 30 }, { heartbeatMs: INTERVAL });
  let closed = false;
  t.teardown(async () => {
    if (!closed) await srv.close();
  });
  const dead = await connect(srv.wsBase, false, demoRequest('dead-peer'));
  // It answers pings by hand until its script is seen running, then goes silent: so the test
  // does not depend on the script starting within two heartbeat intervals.
  let answering = true;
  dead.ws.on('ping', () => answering && dead.ws.pong());
  const idleDead = await connect(srv.wsBase, false); // never even sends a request
  t.ok(await waitFor(() => processesMatching(mark).length > 0, 10_000), 'its suppliers script runs');
  answering = false;

  const code = await Promise.race([dead.closed, new Promise<number>((r) => setTimeout(() => r(-1), 5000))]);
  t.equal(code, 1006, 'terminated (no close handshake) within a few intervals');
  t.ok(dead.pings >= 1, `it was pinged (${dead.pings} times) before`);
  t.equal(await Promise.race([idleDead.closed, new Promise<number>((r) => setTimeout(() => r(-1), 5000))]), 1006, 'the idle one too');
  t.ok(await waitFor(() => srv.agg.sessions.size === 0, 5000), 'both sessions ended');
  t.ok(await waitFor(() => processesMatching(mark).length === 0, 5000), 'the running script was killed');
  t.equal((await fetch(`${srv.httpBase}/health`)).status, 200);

  await srv.close();
  closed = true;
  const log = fs.readFileSync(path.join(srv.logDir, 'aggregator.log'), 'utf8');
  t.equal(log.split('\n').filter((l) => l.includes('answered no ping')).length, 2, 'each termination is logged');
  t.match(log, /"error":"E_SESSION_CLOSED"[^\n]*"session ended"/, 'the search ended as closed by the browser');
});

t.test('a peer that answers pings keeps its search, however long', async (t) => {
  const srv = await startServer({ 'aggregator.script.suppliers': slowSuppliers(1.2, 'hb-live') }, { heartbeatMs: INTERVAL });
  t.teardown(() => srv.close());
  const frames: Record<string, unknown>[] = [];
  const live = await connect(srv.wsBase, true, demoRequest('live-peer'));
  live.ws.on('message', (d) => frames.push(JSON.parse(String(d)) as Record<string, unknown>));
  const idle = await connect(srv.wsBase, true); // connected, no request yet, answers pings
  t.equal(await live.closed, 1000, 'the search ended normally');
  t.ok(live.pings >= 3, `after ${live.pings} pings`);
  t.match(frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' });
  t.equal(idle.ws.readyState, WebSocket.OPEN, 'the idle peer that answers is still connected');
  idle.ws.close();
});
