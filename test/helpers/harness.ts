// Shared test harness: a real aggregator on a real port (port 0), a real WebSocket client,
// and the frame invariants (docs/protocol.md, Order and invariants) checked on every search a
// test runs.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { type Aggregator, type AppOptions, buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { livePids } from '../../src/processes/reaper.js';
import type { Frame } from '../../src/frames.js';

export const ROOT = PACKAGE_ROOT;
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

// Demo scripts sleep a random 0..AGGREGATOR_DEMO_DELAY_MS; tests keep that short.
process.env.AGGREGATOR_DEMO_DELAY_MS ??= '30';

export interface TestServer {
  agg: Aggregator;
  port: number;
  /** ws://127.0.0.1:PORT */
  wsBase: string;
  /** http://127.0.0.1:PORT */
  httpBase: string;
  logDir: string;
  close(): Promise<void>;
}

/** Starts buildApp on 127.0.0.1:0 with `-Dkey=value` overrides on top of the defaults. */
export async function startServer(
  overrides: Record<string, string | number | boolean> = {},
  appOptions: AppOptions = {},
): Promise<TestServer> {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-test-'));
  const argv = Object.entries({
    'server.port': 0,
    'logging.file.path': logDir,
    'logging.level.me.blzr.aggregator': 'debug',
    'aggregator.timeout.script': 2,
    'aggregator.timeout.session': 10,
    'aggregator.timeout.kill': 0.3,
    ...overrides,
  }).map(([k, v]) => `-D${k}=${String(v)}`);
  const { config } = loadConfig({ argv, env: {}, cwd: ROOT });
  const logs = createLogger(config, { stdout: false });
  const agg = await buildApp(config, logs.log, appOptions);
  await agg.app.listen({ port: config.server.port, host: '127.0.0.1' });
  const addr = agg.app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    agg,
    port,
    wsBase: `ws://127.0.0.1:${port}`,
    httpBase: `http://127.0.0.1:${port}`,
    logDir,
    async close() {
      await agg.shutdown();
      await logs.close();
    },
  };
}

export type AnyFrame = Frame & Record<string, unknown>;

export interface SearchResult {
  frames: AnyFrame[];
  closeCode: number;
  closeReason: string;
  /** ms from open to close */
  ms: number;
}

export interface SearchOptions {
  /** Path on the server, default /ws. */
  path?: string;
  headers?: Record<string, string>;
  /** Called on every frame; may send more frames or close the socket. */
  onFrame?: (frame: AnyFrame, ws: WebSocket) => void;
  /** Give up after this many ms (the test fails instead of hanging). */
  timeoutMs?: number;
  /** Called once the socket is open, before `request` is sent (e.g. to send a binary frame). */
  onOpen?: (ws: WebSocket) => void;
}

/** Opens a WebSocket, sends `request` (an object is JSON-encoded), collects frames until close. */
export function search(base: string, request: unknown, opts: SearchOptions = {}): Promise<SearchResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base}${opts.path ?? '/ws'}`, { headers: opts.headers });
    const frames: AnyFrame[] = [];
    const started = performance.now();
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`search did not end within ${opts.timeoutMs ?? 30000} ms; ${frames.length} frames`));
    }, opts.timeoutMs ?? 30000);
    ws.on('open', () => {
      opts.onOpen?.(ws);
      if (request !== undefined) ws.send(typeof request === 'string' ? request : JSON.stringify(request));
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as AnyFrame;
      frames.push(frame);
      opts.onFrame?.(frame, ws);
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ frames, closeCode: code, closeReason: String(reason), ms: performance.now() - started });
    });
  });
}

export const demoRequest = (code: string, extra: Record<string, unknown> = {}) => ({
  code,
  brand: 'ctr',
  apikey: 'secret-apikey-111111',
  analog: 1,
  ...extra,
});

/**
 * The frame invariants of docs/protocol.md (Order and invariants), as a list of violations
 * (empty = all hold):
 * every task starts with PENDING, ends with exactly one SUCCESS/ERROR, nothing after it;
 * children's PENDING before the parent's end; one final SESSION frame, last; no `params`.
 */
export function invariantViolations(frames: AnyFrame[]): string[] {
  const bad: string[] = [];
  const state = new Map<number, 'open' | 'ended'>();
  const sessionFrames = frames.filter((f) => f._task === 'SESSION' && f._error !== 'E_SESSION_REUSED');
  frames.forEach((f, i) => {
    if (typeof f._session !== 'string') bad.push(`frame ${i}: no _session`);
    if ('params' in f && f._task !== 'ITEMS') bad.push(`frame ${i}: carries params`);
    if (JSON.stringify(f).includes('"params"')) bad.push(`frame ${i}: carries a params field`);
    if (f._task === 'SESSION') {
      if (f._id !== undefined) bad.push(`frame ${i}: SESSION frame with _id`);
      return;
    }
    const id = f._id;
    if (typeof id !== 'number' || id <= 0) return void bad.push(`frame ${i}: bad _id ${String(id)}`);
    const s = state.get(id);
    if (f._status === 'PENDING') {
      if (s !== undefined) bad.push(`task ${id}: second PENDING`);
      state.set(id, 'open');
      if (f._parent !== undefined && state.get(f._parent) !== 'open')
        bad.push(`task ${id}: PENDING after its parent ${f._parent} ended`);
    } else if (s !== 'open') {
      bad.push(`task ${id}: ${f._status} ${s === 'ended' ? 'after its end' : 'before PENDING'}`);
    } else if (f._status === 'SUCCESS' || f._status === 'ERROR') {
      state.set(id, 'ended');
      if (f._status === 'ERROR' && typeof f._error !== 'string') bad.push(`task ${id}: ERROR without _error`);
    }
  });
  const last = frames[frames.length - 1];
  if (sessionFrames.length > 0) {
    if (sessionFrames.length !== 1) bad.push(`${sessionFrames.length} final SESSION frames`);
    if (last !== sessionFrames[sessionFrames.length - 1]) bad.push('the SESSION frame is not the last frame');
    for (const [id, s] of state) if (s !== 'ended') bad.push(`task ${id} never ended`);
  }
  return bad;
}

/** Polls until `check` returns true or `ms` pass; returns the last result. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms = 5000, every = 25): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, every));
  }
}

/** pids of live processes whose command line contains `needle` (from /proc). */
export function processesMatching(needle: string): number[] {
  return livePids((p) => p.cmdline().includes(needle));
}

/** A loopback port that was free a moment ago, for programs that must be told their port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

