// Types of public/client.js, the aggregator's browser client (docs/client.md, docs/protocol.md).

export type TaskKind = 'SUPPLIERS' | 'ITEMS';
export type FrameStatus = 'PENDING' | 'SENDING' | 'SUCCESS' | 'ERROR';

/** Error codes of docs/errors.md (the aggregator never sends E_SESSION_CLOSED or E_TOO_MANY_SESSIONS in a frame). */
export type ErrorCode =
  | 'E_REQUEST_JSON'
  | 'E_ILLEGAL_REQUEST'
  | 'E_SESSION_REUSED'
  | 'E_SUPPLIERS_JSON'
  | 'E_SUPPLIERS_RESPONSE'
  | 'E_ITEMS_JSON'
  | 'E_ITEMS_RESPONSE'
  | 'E_SCRIPT_START'
  | 'E_SCRIPT_ERROR'
  | 'E_SCRIPT_TIMEOUT'
  | 'E_SCRIPT_CANCELLED'
  | 'E_SESSION_TIMEOUT'
  | 'E_SESSION_CLOSED'
  | 'E_TOO_MANY_SESSIONS'
  | 'E_SERVER_SHUTDOWN'
  | 'E_UNKNOWN';

/** One frame as the aggregator sends it (docs/protocol.md, Frames); item frames carry the item's own fields too. */
export interface Frame {
  _session: string;
  _task: TaskKind | 'SESSION';
  _id?: number;
  _status: FrameStatus;
  _error?: ErrorCode;
  _params?: Record<string, unknown>;
  _info?: unknown;
  _parent?: number;
  /** `true` on the SUCCESS frame of a task answered from the items cache (no script ran). */
  _cached?: boolean;
  [field: string]: unknown;
}

/** An item: the object the items script returned, without the reserved `_` fields. */
export type Item = Record<string, unknown>;

/** One SUPPLIERS or ITEMS task, updated in place as its frames arrive. */
export interface Task {
  id: number;
  kind: TaskKind;
  /** PENDING until its first item (SENDING), then SUCCESS or ERROR. */
  status: FrameStatus;
  error?: ErrorCode;
  /** The supplier's `info` field (`_info`), when it has one. */
  info?: unknown;
  /** The ITEMS task whose `suppliers` answer created this one (analogs). */
  parent?: number;
  /** Items received from this task so far. */
  items: number;
}

/** How the search ended, given to onEnd and by `handle.done`. */
export interface SearchEnd {
  /** The final SESSION frame's status; CLOSED when the page closed the search first;
   *  ERROR also when the socket closed without a SESSION frame (see closeCode). */
  status: 'SUCCESS' | 'ERROR' | 'CLOSED';
  /** The session's error code (from the SESSION frame, or the close reason such as E_TOO_MANY_SESSIONS). */
  error?: ErrorCode;
  /** The request fields the aggregator echoes on errors (aggregator.fields.faulty). */
  params?: Record<string, unknown>;
  /** 1000 normal, 4400 bad request, 4408 session timeout, 1001 shutdown, 1013 too many sessions… */
  closeCode: number;
  closeReason: string;
  closedByClient: boolean;
  session?: string;
  /** Milliseconds from the call to the close. */
  ms: number;
  tasks: number;
  /** Tasks without a terminal frame (only when the socket closed early). */
  openTasks: number;
  items: number;
}

export interface SearchOptions {
  /** WebSocket URL; default `endpoint('ws')`, relative to the page. */
  url?: string;
  /** Called once the request has been sent. */
  onSent?(handle: SearchHandle): void;
  /** Every parsed frame, before it is tracked. */
  onFrame?(frame: Frame): void;
  /** A task was queued (PENDING), sent its first item (SENDING) or ended (SUCCESS / ERROR). */
  onTask?(task: Task, frame: Frame): void;
  /** One item, the moment it arrives. */
  onItem?(item: Item, task: Task, frame: Frame): void;
  /** A SESSION frame that does not end the search (E_SESSION_REUSED). */
  onNotice?(frame: Frame): void;
  onEnd?(end: SearchEnd): void;
  /** WebSocket constructor; default the browser's (e.g. the `ws` package's in Node). */
  WebSocket?: unknown;
}

export interface SearchHandle {
  readonly url: string;
  /** Every task seen so far, by id. */
  readonly tasks: Map<number, Task>;
  readonly session: string | undefined;
  readonly items: number;
  readonly end: SearchEnd | undefined;
  readonly socket: WebSocket;
  readonly done: Promise<SearchEnd>;
  /** Stops the search; the aggregator drops its queued tasks and kills its scripts. */
  close(code?: number, reason?: string): void;
}

export interface EchoResult {
  ok: boolean;
  /** {"aggregator": {"php": input}} on success, else the ERROR frame. */
  answer: unknown;
  error?: ErrorCode;
  closeCode: number;
  closeReason: string;
}

export const RESERVED: readonly string[];
export function endpoint(path?: string, base?: string): string;
export function search(request: object | string, options?: SearchOptions): SearchHandle;
export function echo(input: Record<string, string>, options?: { url?: string; WebSocket?: unknown }): Promise<EchoResult>;
