// The one error catalogue: every error code, what it means, and how the socket is closed when
// the code ends a session. Every close code the server sends comes from here.
// test/errors.test.ts checks it against docs/errors.md.

export interface ErrorInfo {
  /** What the code means, as the docs say it. */
  readonly meaning: string;
  /** WebSocket close code when this error ends the whole session; undefined = task-level only. */
  readonly close?: number;
  /** Whether the browser may ever see this code in a frame. */
  readonly sent: boolean;
}

export const ERRORS = {
  E_REQUEST_JSON: { meaning: 'the request is not valid JSON', close: 4400, sent: true },
  E_ILLEGAL_REQUEST: { meaning: 'required request fields missing or not scalars', close: 4400, sent: true },
  E_SESSION_REUSED: { meaning: 'a second request on a socket whose search runs', sent: true },
  E_SUPPLIERS_JSON: { meaning: 'suppliers script stdout is not JSON', close: 1000, sent: true },
  E_SUPPLIERS_RESPONSE: { meaning: 'suppliers script JSON lacks the suppliers array of objects', close: 1000, sent: true },
  E_ITEMS_JSON: { meaning: 'items script stdout is not JSON', sent: true },
  E_ITEMS_RESPONSE: { meaning: 'items script JSON lacks the items array of objects', sent: true },
  E_SCRIPT_START: { meaning: "the script's program cannot be started (not found, not executable)", close: 1000, sent: true },
  E_SCRIPT_ERROR: {
    meaning: 'non-zero exit, killed by a signal it was not sent by us, or stdout over aggregator.limit.output-size',
    close: 1000,
    sent: true,
  },
  E_SCRIPT_TIMEOUT: { meaning: 'the script ran past aggregator.timeout.script', close: 1000, sent: true },
  E_SCRIPT_CANCELLED: { meaning: 'the task was removed before its script started', close: 1000, sent: true },
  E_SESSION_TIMEOUT: { meaning: 'the session ran past aggregator.timeout.session', close: 4408, sent: true },
  E_SESSION_CLOSED: { meaning: 'the browser closed the socket (never sent)', sent: false },
  E_TOO_MANY_SESSIONS: { meaning: 'over aggregator.limit.sessions', close: 1013, sent: false },
  E_SERVER_SHUTDOWN: { meaning: 'SIGTERM/SIGINT while the search ran', close: 1001, sent: true },
  E_UNKNOWN: { meaning: 'a bug; the browser should never see it', close: 1011, sent: true },
} as const satisfies Record<string, ErrorInfo>;

export type ErrorCode = keyof typeof ERRORS;

/** The close code of a search that ended well (or whose error belongs to a task step). */
export const NORMAL_CLOSE = 1000;

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

/** Close code for a session that ends with `code` (1000 when the error belongs to a task step). */
export function closeCodeFor(code: ErrorCode): number {
  const info: ErrorInfo = ERRORS[code];
  return info.close ?? NORMAL_CLOSE;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, value);
}
