// Everything one session sends, in order, at the pace of its socket. Frames wait in one queue;
// a task's items wait as the parsed answer and become frame text only when the socket has
// room, so a browser that reads slowly holds parsed items, not megabytes of built frames, and
// the items are dropped as they go out. What is queued for the browser counts against
// aggregator.limit.send-buffer: what ws holds for the socket, plus what the waiting frames will
// take (items estimated from the answer's size); past it, `onOverflow` ends the session as if
// the browser had closed it.
//
// The frames of one tick leave in one writev, not one each: the TCP socket under the WebSocket
// is corked at the first frame and uncorked when the tick ends, or after 64 frames (a writev
// takes at most 1024 buffers at once; the rest would wait for the next turn of the loop). ws has
// no cork of its own; without its `_socket`, frames go one by one.
import type { WebSocket } from 'ws';
import { type Frame, type TaskMeta, itemFrameText, itemFrameOverhead } from './frames.js';
import type { JsonObject } from './json.js';

/** Built frames are handed to ws until it holds this much; then the outbox waits for 'drain'. */
export const HIGH_WATER_BYTES = 1024 * 1024;
const FRAMES_PER_CORK = 64;
/** ws's frame header, at most (a server sends no mask). */
const HEADER_BYTES = 10;

interface ItemsEntry {
  readonly task: TaskMeta;
  readonly items: (JsonObject | undefined)[];
  next: number;
  /** Estimated frame bytes per item. */
  readonly each: number;
}
type Entry = { text: string } | ItemsEntry | { close: { code: number; reason: string } };

export interface OutboxOptions {
  readonly sendBufferBytes: number;
  /** Called once when what is queued passes the limit; the outbox has dropped everything. */
  onOverflow(queued: { buffered: number; waiting: number }): void;
}

type Tcp = { cork(): void; uncork(): void; once(event: 'drain', fn: () => void): void };

export class Outbox {
  private readonly queue: Entry[] = [];
  private head = 0;
  /** Estimated bytes of the queued entries not yet handed to ws. */
  private waiting = 0;
  private corked = 0; // frames since corked; 0 = not corked
  private flushScheduled = false;
  private awaitingDrain = false;
  private done = false;
  private discarded = false;
  private expiry: NodeJS.Timeout | undefined;
  private readonly tcp: Tcp | undefined;

  constructor(
    private readonly socket: WebSocket,
    private readonly opts: OutboxOptions,
  ) {
    this.tcp = (socket as unknown as { _socket?: Tcp })._socket;
  }

  /** Nothing more will be sent (closed, overflowed, or the browser is gone). */
  get gone(): boolean {
    return this.done;
  }

  frame(frame: Frame): void {
    const text = JSON.stringify(frame);
    this.push({ text }, text.length);
  }

  /** `bytes`: the size of the script's answer the items came from. */
  items(task: TaskMeta, items: JsonObject[], bytes: number): void {
    if (items.length === 0) return;
    const each = Math.ceil(bytes / items.length) + itemFrameOverhead(task) + HEADER_BYTES;
    this.push({ task, items, next: 0, each }, each * items.length);
  }

  /** Closes the socket once everything queued before has gone out. */
  close(code: number, reason: string): void {
    this.push({ close: { code, reason } }, 0);
  }

  /**
   * Unless the connection is closed within `ms` (every frame taken and the close answered),
   * whatever is still queued is dropped and `onExpired` called: a browser that does not read
   * holds neither a finished session's frames nor its connection for as long as the socket
   * lives (ws itself waits 30 s for a close to be answered). discard() cancels it.
   */
  expireIn(ms: number, onExpired: () => void): void {
    if (this.discarded || this.expiry || this.socket.readyState === this.socket.CLOSED) return;
    this.expiry = setTimeout(() => {
      if (this.discarded || this.socket.readyState === this.socket.CLOSED) return;
      this.discard();
      onExpired();
    }, ms);
    this.expiry.unref();
  }

  /** The browser is gone (or is let go): drop everything. */
  discard(): void {
    clearTimeout(this.expiry);
    this.discarded = true;
    this.done = true;
    this.queue.length = 0;
    this.head = 0;
    this.waiting = 0;
    this.uncork();
  }

  private push(entry: Entry, bytes: number): void {
    if (this.done) return;
    this.queue.push(entry);
    this.waiting += bytes;
    if (!this.awaitingDrain) this.pump();
    else this.checkLimit();
  }

  private checkLimit(): boolean {
    const buffered = this.socket.bufferedAmount;
    if (buffered + this.waiting <= this.opts.sendBufferBytes) return true;
    const waiting = this.waiting;
    this.discard();
    this.opts.onOverflow({ buffered, waiting });
    return false;
  }

  /** Hands frames to ws until the queue is empty or ws holds HIGH_WATER_BYTES. */
  private pump(): void {
    if (!this.checkLimit()) return;
    const highWater = Math.min(HIGH_WATER_BYTES, this.opts.sendBufferBytes);
    while (this.head < this.queue.length && !this.done) {
      if (this.socket.readyState !== this.socket.OPEN) return this.discard();
      if (this.socket.bufferedAmount >= highWater) return this.waitForDrain();
      const entry = this.queue[this.head] as Entry;
      if ('text' in entry) {
        this.waiting -= entry.text.length;
        this.write(entry.text);
      } else if ('items' in entry) {
        const item = entry.items[entry.next];
        entry.items[entry.next++] = undefined; // sent: the parsed item can go
        this.waiting -= entry.each;
        if (item) this.write(itemFrameText(item, entry.task));
        if (entry.next < entry.items.length) continue;
      } else {
        this.done = true;
        this.socket.close(entry.close.code, entry.close.reason);
        // Out now: a shutdown terminates the sockets within this tick; corked bytes would be lost.
        this.uncork();
      }
      this.queue[this.head++] = { text: '' }; // let the entry go
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
  }

  private waitForDrain(): void {
    if (!this.tcp) return; // no socket to wait on: frames go when the next ones are queued
    this.awaitingDrain = true;
    this.uncork();
    this.tcp.once('drain', () => {
      this.awaitingDrain = false;
      if (!this.done) this.pump();
    });
  }

  private write(text: string): void {
    this.cork();
    this.socket.send(text);
  }

  private cork(): void {
    if (!this.tcp) return;
    if (this.corked > 0) {
      if (++this.corked > FRAMES_PER_CORK) {
        this.uncork();
        this.cork();
      }
      return;
    }
    this.corked = 1;
    this.tcp.cork();
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => {
      this.flushScheduled = false;
      this.uncork();
    });
  }

  private uncork(): void {
    if (this.corked === 0) return;
    this.corked = 0;
    this.tcp?.uncork();
  }
}
