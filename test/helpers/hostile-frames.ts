// Generated hostile WebSocket input (fast-check) and the oracle that says, from docs/protocol.md
// (Request) and the WebSocket rules alone, what the server must answer to each; plus a client that
// runs one connection and a checker comparing the two. Used by test/hostile-input.test.ts.
import fc from 'fast-check';
import WebSocket from 'ws';
import { type AnyFrame, invariantViolations } from './harness.js';

export const LIMIT = 64 * 1024; // aggregator.limit.request-size default
const REQUIRED = ['code', 'brand', 'apikey', 'analog'];
const FAULTY = ['code', 'brand', 'analog'];
const MB = 1024 * 1024;

// ---------------------------------------------------------------- generated frames

export interface Sent {
  data: Buffer | string;
  binary: boolean;
}
export interface Conn {
  first: Sent;
  /** Frames sent right after the first one, on the same connection. */
  more: Sent[];
}

export const text = (data: string): Sent => ({ data, binary: false });
const POISON = ['__proto__', 'constructor', 'prototype'];

/** A JSON string literal with hostile content: lone surrogates, control characters (escaped or raw). */
const nastyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 20 }).map((s) => JSON.stringify(s)),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => `"x\\u${c.toString(16)}y"`), // lone surrogate, escaped
  fc.integer({ min: 0, max: 0x1f }).map((c) => `"a${String.fromCharCode(c)}b"`), // raw control char: not JSON
  fc.integer({ min: 0, max: 0x1f }).map((c) => `"a\\u${c.toString(16).padStart(4, '0')}b"`),
  fc.constantFrom('"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"', '"\u2028\u2029"', '"\\"', '"\\x41"', '"\ufeff"'),
);

/** Any JSON value text, nested at most a little. */
const anyValue = fc.oneof(
  nastyString,
  fc.json({ maxDepth: 2 }),
  fc.constantFrom('null', 'true', 'false', '0', '-0', '1e308', '-1e-308', '[]', '{}', '1.5', '"ok"'),
);

/** A value for a required field: sometimes a good scalar, often not. */
const fieldValue = fc.oneof(
  { arbitrary: fc.constantFrom('"3310"', '"ctr"', '1', '0', 'true', 'false', '-1.5', '""'), weight: 4 },
  { arbitrary: fc.constantFrom('null', '{}', '[]', '[1]', '{"a":1}', '{"__proto__":{"polluted":1}}'), weight: 3 },
  { arbitrary: anyValue, weight: 2 },
);

/** Objects as text (so `__proto__` stays a key and keys may repeat). */
export const requestObject = fc
  .tuple(
    fc.array(
      fc.tuple(fc.constantFrom(...REQUIRED), fieldValue, fc.boolean()).map(([k, v, keep]): [string, string][] => (keep ? [[k, v]] : [])),
      { minLength: 4, maxLength: 6 },
    ),
    fc.array(
      fc.tuple(
        fc.oneof(fc.constantFrom(...POISON, 'polluted', 'toString', 'hasOwnProperty', 'params', '_session'), fc.string({ maxLength: 8 })),
        fc.oneof(anyValue, fc.constant('{"polluted":"yes","prototype":{"polluted":"yes"}}')),
      ),
      { maxLength: 4 },
    ),
    // Now and then all four present, so some requests are valid (each one runs a script).
    fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  )
  .map(([req, extra, allRequired]) => {
    const entries: [string, string][] = [...req.flat(), ...extra].map(([k, v]) => [JSON.stringify(k), v]);
    // Often all four present (duplicates allowed: JSON.parse keeps the last).
    if (allRequired) for (const k of REQUIRED) entries.push([JSON.stringify(k), '"v"']);
    return `{${entries.map(([k, v]) => `${k}:${v}`).join(',')}}`;
  });

/** A good request, then mutated: truncated, a byte changed, or cut in the middle of an escape. */
export const mutated = fc
  .tuple(requestObject, fc.nat(), fc.integer({ min: 0, max: 0x10ffff }), fc.constantFrom('cut', 'replace', 'insert'))
  .map(([s, at, cp, how]) => {
    const i = s.length === 0 ? 0 : at % s.length;
    const ch = String.fromCodePoint(cp >= 0xd800 && cp <= 0xdfff ? 0x41 : cp);
    if (how === 'cut') return s.slice(0, i);
    if (how === 'replace') return s.slice(0, i) + ch + s.slice(i + 1);
    return s.slice(0, i) + ch + s.slice(i);
  });

/** Deep nesting that still fits in the request size (up to 30,000 levels). */
const deep = fc.tuple(fc.integer({ min: 1, max: 30_000 }), fc.constantFrom('[]', '{}', 'field')).map(([n, kind]) => {
  if (kind === '[]') return '['.repeat(n) + ']'.repeat(n);
  if (kind === '{}') return '{"a":'.repeat(n) + '1' + '}'.repeat(n);
  return `{"code":${'['.repeat(n)}${']'.repeat(n)},"brand":"b","apikey":"k","analog":1}`;
});

/** Bytes that are (mostly) not UTF-8, sent as a text frame. */
const badUtf8 = fc
  .tuple(fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.constantFrom([0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80]))
  .map(([bytes, bad]) => ({ data: Buffer.concat([Buffer.from('{"code":"'), Buffer.from(bytes), Buffer.from(bad)]), binary: false }));

export const frame: fc.Arbitrary<Sent> = fc.oneof(
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map(text), weight: 30 }, // not JSON, mostly
  { arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).map(text), weight: 20 },
  { arbitrary: anyValue.map(text), weight: 30 }, // JSON that is not a request object
  { arbitrary: requestObject.map(text), weight: 80 },
  { arbitrary: mutated.map(text), weight: 40 },
  { arbitrary: deep.map(text), weight: 10 },
  { arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => ({ data: Buffer.from(b), binary: true })), weight: 20 },
  { arbitrary: fc.constantFrom(text(''), { data: Buffer.alloc(0), binary: true }, text(' '), text('\ufeff{}')), weight: 10 },
  { arbitrary: badUtf8, weight: 10 },
  { arbitrary: fc.constantFrom(LIMIT + 1, LIMIT * 2, 10 * MB).map((n) => text('x'.repeat(n))), weight: 1 },
);

/** Follow-up frames: anything the WebSocket layer accepts (valid UTF-8, within the size). */
export const follower: fc.Arbitrary<Sent> = fc.oneof(
  requestObject.map(text),
  mutated.map(text),
  fc.uint8Array({ maxLength: 16 }).map((b) => ({ data: Buffer.from(b), binary: true })),
);

export const connection: fc.Arbitrary<Conn> = fc
  .record({
    first: frame,
    more: fc.oneof(
      { arbitrary: fc.constant<Sent[]>([]), weight: 9 },
      { arbitrary: fc.array(follower, { minLength: 1, maxLength: 12 }), weight: 1 },
    ),
  })
  .map(({ first, more }) => ({ first: bytes(first), more: more.map(bytes) }));

/** Encoded once, up front: the wire bytes are fixed and their memory is not counted as growth. */
function bytes(sent: Sent): Sent {
  return { data: typeof sent.data === 'string' ? Buffer.from(sent.data) : sent.data, binary: sent.binary };
}

// ------------------------------------------- the oracle (docs/protocol.md, Request; ws)

export type Outcome =
  | { kind: 'ws-close'; code: 1009 | 1007 }
  | { kind: 'error'; code: 'E_REQUEST_JSON' | 'E_ILLEGAL_REQUEST'; params?: Record<string, unknown> }
  | { kind: 'search' };

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function expected(sent: Sent): Outcome {
  const bytes = typeof sent.data === 'string' ? Buffer.from(sent.data) : sent.data;
  if (bytes.length > LIMIT) return { kind: 'ws-close', code: 1009 };
  if (sent.binary) return { kind: 'error', code: 'E_REQUEST_JSON' };
  let s: string;
  try {
    s = utf8.decode(bytes);
  } catch {
    return { kind: 'ws-close', code: 1007 };
  }
  let value: unknown;
  try {
    value = JSON.parse(s.startsWith('\ufeff') ? s.slice(1) : s); // a BOM is tolerated
  } catch {
    return { kind: 'error', code: 'E_REQUEST_JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'error', code: 'E_ILLEGAL_REQUEST' };
  const v = value as Record<string, unknown>;
  const scalar = (k: string) => Object.hasOwn(v, k) && v[k] !== null && typeof v[k] !== 'object';
  const params = Object.fromEntries(FAULTY.filter(scalar).map((k) => [k, v[k]]));
  return REQUIRED.every(scalar) ? { kind: 'search' } : { kind: 'error', code: 'E_ILLEGAL_REQUEST', params };
}

// ---------------------------------------------------------------- running a connection

export interface Seen {
  frames: AnyFrame[];
  code: number;
  reason: string;
  error?: string;
}

export function run(base: string, conn: Conn): Promise<Seen> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${base}/ws`, { perMessageDeflate: false });
    const frames: AnyFrame[] = [];
    let error: string | undefined;
    const timer = setTimeout(() => ws.terminate(), 15_000);
    ws.on('open', () => {
      for (const f of [conn.first, ...conn.more]) ws.send(f.data, { binary: f.binary });
    });
    ws.on('message', (data) => frames.push(JSON.parse(String(data)) as AnyFrame));
    // Sending 10 MB to a server that already closed may end in EPIPE/ECONNRESET.
    ws.on('error', (err) => (error = err.message));
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ frames, code, reason: String(reason), error });
    });
  });
}

export function describe(sent: Sent): string {
  const s = sent.binary ? `0x${Buffer.from(sent.data).toString('hex')}` : JSON.stringify(Buffer.from(sent.data).toString('utf8'));
  return `${sent.binary ? 'binary' : 'text'} ${s.length > 120 ? `${s.slice(0, 120)}… (${s.length})` : s}`;
}

/** Mismatches between what a connection saw and what the oracle expects (empty = as docs/protocol.md says). */
export function check(conn: Conn, seen: Seen): string[] {
  const want = expected(conn.first);
  const bad: string[] = [];
  const errors = seen.frames.filter((f) => f._task === 'SESSION' && f._status === 'ERROR' && f._error !== 'E_SESSION_REUSED');
  if (want.kind === 'ws-close') {
    // 10 MB: the server closes while we still send; the close frame may be lost to a reset.
    const ok = seen.code === want.code || (want.code === 1009 && seen.code === 1006 && seen.error !== undefined);
    if (!ok) bad.push(`close ${seen.code} (want ${want.code})`);
    if (seen.frames.length > 0) bad.push(`${seen.frames.length} frames (want none)`);
  } else if (want.kind === 'error') {
    if (seen.frames.length !== 1) bad.push(`${seen.frames.length} frames (want exactly 1)`);
    const f = errors[0];
    if (!f || f._error !== want.code) bad.push(`error ${String(f?._error)} (want ${want.code})`);
    if (f && typeof f._session !== 'string') bad.push('no _session');
    if (f && '_id' in f) bad.push('SESSION frame with _id');
    if (f && JSON.stringify(f._params ?? (want.params ? {} : undefined)) !== JSON.stringify(want.params))
      bad.push(`_params ${JSON.stringify(f._params)} (want ${JSON.stringify(want.params)})`);
    if (seen.code !== 4400 || seen.reason !== want.code) bad.push(`close ${seen.code} ${seen.reason} (want 4400 ${want.code})`);
  } else {
    const last = seen.frames.at(-1);
    if (!last || last._task !== 'SESSION' || last._status !== 'SUCCESS') bad.push(`last frame ${JSON.stringify(last)}`);
    if (seen.code !== 1000) bad.push(`close ${seen.code} (want 1000)`);
    if (errors.length > 0) bad.push(`error frames ${JSON.stringify(errors)}`);
    bad.push(...invariantViolations(seen.frames));
    // Follow-ups are refused while the search runs (or arrive after it ended): never more.
    const reused = seen.frames.filter((f) => f._error === 'E_SESSION_REUSED').length;
    if (reused > conn.more.length) bad.push(`${reused} E_SESSION_REUSED for ${conn.more.length} follow-ups`);
  }
  if (JSON.stringify(seen.frames).includes('"apikey"')) bad.push('a frame carries the apikey');
  return bad;
}

export async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

