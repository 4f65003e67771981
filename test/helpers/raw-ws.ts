// A WebSocket client on a bare TCP socket (node:net), for what a well-behaved client library
// cannot do: send half a frame and vanish, break the framing rules, or stop reading.
import crypto from 'node:crypto';
import net from 'node:net';

export interface RawSocket {
  socket: net.Socket;
  /** Bytes the server sent after the 101 response (frames). */
  received: Buffer[];
  /** Resolves when the TCP connection is closed (by either side). */
  closed: Promise<void>;
}

/** Connects and completes the upgrade handshake by hand; rejects unless the answer is 101. */
export function rawUpgrade(port: number, path = '/ws', headers: Record<string, string> = {}): Promise<RawSocket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    let head = Buffer.alloc(0);
    let upgraded = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no upgrade answer within 5 s'));
    }, 5000);
    socket.on('error', (err) => {
      if (!upgraded) {
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.on('data', (chunk: Buffer) => {
      if (upgraded) return void received.push(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      const status = head.subarray(0, head.indexOf('\r\n')).toString();
      if (!/^HTTP\/1\.1 101 /.test(status)) {
        socket.destroy();
        return reject(new Error(`upgrade refused: ${status}`));
      }
      upgraded = true;
      const rest = head.subarray(end + 4);
      if (rest.length > 0) received.push(rest);
      resolve({ socket, received, closed });
    });
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
    );
  });
}

export interface FrameOptions {
  fin?: boolean;
  /** Clients must mask; false breaks the rule. */
  mask?: boolean;
  /** RSV1..3 bits as a number 0..7 (non-zero breaks the rule without an extension). */
  rsv?: number;
  /** Length to announce instead of the payload's own (to announce more than is sent). */
  announce?: number;
}

/** One client frame: opcode 1 text, 2 binary, 0 continuation, 8 close, 9 ping, 10 pong. */
export function clientFrame(opcode: number, payload: Buffer | string, opts: FrameOptions = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const mask = opts.mask ?? true;
  const len = opts.announce ?? data.length;
  const b0 = ((opts.fin ?? true) ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode;
  let header: Buffer;
  if (len < 126) header = Buffer.from([b0, (mask ? 0x80 : 0) | len]);
  else if (len < 65536) {
    header = Buffer.alloc(4);
    header.writeUInt8(b0, 0);
    header.writeUInt8((mask ? 0x80 : 0) | 126, 1);
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header.writeUInt8(b0, 0);
    header.writeUInt8((mask ? 0x80 : 0) | 127, 1);
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  if (!mask) return Buffer.concat([header, data]);
  const key = crypto.randomBytes(4);
  const masked = Buffer.from(data);
  for (let i = 0; i < masked.length; i++) masked[i] = (masked[i] ?? 0) ^ (key[i % 4] ?? 0);
  return Buffer.concat([header, key, masked]);
}

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/** Splits what the server sent into frames (server frames are never masked). */
export function serverFrames(bytes: Buffer): ServerFrame[] {
  const out: ServerFrame[] = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    const b0 = bytes[at] ?? 0;
    let len = (bytes[at + 1] ?? 0) & 0x7f;
    let start = at + 2;
    if (len === 126) {
      len = bytes.readUInt16BE(at + 2);
      start = at + 4;
    } else if (len === 127) {
      len = Number(bytes.readBigUInt64BE(at + 2));
      start = at + 10;
    }
    if (start + len > bytes.length) break;
    out.push({ opcode: b0 & 0x0f, payload: bytes.subarray(start, start + len) });
    at = start + len;
  }
  return out;
}

/** The close code in the server's close frame, if it sent one. */
export function serverCloseCode(raw: RawSocket): number | undefined {
  const close = serverFrames(Buffer.concat(raw.received)).find((f) => f.opcode === 8);
  return close && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : undefined;
}
