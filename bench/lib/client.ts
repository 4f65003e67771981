// The load generator's WebSocket client (ws, loopback). It times a search from the moment its
// request is sent and classifies frames by substring (no JSON.parse per frame, so the client
// costs the same per frame against the aggregator and against a baseline server).
import WebSocket from 'ws';
import type { Frame } from '../../src/frames.js';

const SENDING = '"_status":"SENDING"';
const SESSION = '"_task":"SESSION"';
const SESSION_OK = '"_status":"SUCCESS"';

export interface Timing {
  closeCode: number;
  frames: number;
  /** Item frames (SENDING). */
  items: number;
  /** ms from sending the request; null when it never happened. */
  firstFrameMs: number | null;
  firstItemMs: number | null;
  lastItemMs: number | null;
  /** The final SESSION frame. */
  endMs: number | null;
  closeMs: number;
  /** The final SESSION frame said SUCCESS. */
  sessionOk: boolean;
  /** Every frame parsed, when asked for (smoke checks of docs/protocol.md, Order and invariants). */
  parsed?: (Frame & Record<string, unknown>)[];
}

export interface SearchOptions {
  keepFrames?: boolean;
  timeoutMs?: number;
  /** Called on every frame with its ms since the request. */
  onFrame?: (data: Buffer, ms: number) => void;
}

/** Opens a socket; rejects on error or after `timeoutMs`. */
export function connect(url: string, timeoutMs = 30000): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`connect ${url}: no open within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      ws.removeAllListeners('error');
      resolve(ws);
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Sends `request` on an open socket and times every frame until the server closes it. */
export function timeSearch(ws: WebSocket, request: unknown, opts: SearchOptions = {}): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const timeoutMs = opts.timeoutMs ?? 60000;
    const t: Timing = {
      closeCode: 0,
      frames: 0,
      items: 0,
      firstFrameMs: null,
      firstItemMs: null,
      lastItemMs: null,
      endMs: null,
      closeMs: 0,
      sessionOk: false,
    };
    if (opts.keepFrames) t.parsed = [];
    let t0 = 0;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`search did not end within ${timeoutMs} ms (${t.frames} frames)`));
    }, timeoutMs);
    ws.on('message', (data: Buffer) => {
      const now = performance.now() - t0;
      t.frames++;
      t.firstFrameMs ??= now;
      if (data.includes(SENDING)) {
        t.items++;
        t.firstItemMs ??= now;
        t.lastItemMs = now;
      } else if (data.includes(SESSION)) {
        t.endMs = now;
        t.sessionOk = data.includes(SESSION_OK);
      }
      opts.onFrame?.(data, now);
      if (t.parsed) t.parsed.push(JSON.parse(data.toString('utf8')) as Frame & Record<string, unknown>);
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.once('close', (code) => {
      clearTimeout(timer);
      t.closeMs = performance.now() - t0;
      t.closeCode = code;
      resolve(t);
    });
    t0 = performance.now();
    ws.send(typeof request === 'string' ? request : JSON.stringify(request));
  });
}

/** connect + timeSearch. */
export async function search(url: string, request: unknown, opts: SearchOptions = {}): Promise<Timing> {
  return timeSearch(await connect(url, opts.timeoutMs), request, opts);
}
