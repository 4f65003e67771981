// The frames the browser receives (docs/protocol.md, Frames). Reserved fields always win over an item's own.
import type { ErrorCode } from './errors.js';
import type { Json, JsonObject } from './json.js';

export type TaskKind = 'SUPPLIERS' | 'ITEMS';
export type FrameTask = TaskKind | 'SESSION';
export type FrameStatus = 'PENDING' | 'SENDING' | 'SUCCESS' | 'ERROR';

export const RESERVED = ['_session', '_task', '_id', '_status', '_error', '_params', '_info', '_parent'] as const;

export interface Frame {
  _session: string;
  _task: FrameTask;
  _id?: number;
  _status: FrameStatus;
  _error?: ErrorCode;
  _params?: JsonObject;
  _info?: Json;
  _parent?: number;
  /** On the SUCCESS frame of a task answered from the items cache. */
  _cached?: true;
}

/** What every frame of one task carries. */
export interface TaskMeta {
  readonly session: string;
  readonly id: number;
  readonly kind: TaskKind;
  /** Present only when the supplier has an info field (`_info` "when it has one"). */
  readonly info?: { value: Json };
  readonly parent?: number;
}

export function taskFrame(meta: TaskMeta, status: FrameStatus, error?: { code: ErrorCode; params?: JsonObject }, cached = false): Frame {
  const frame: Frame = { _session: meta.session, _task: meta.kind, _id: meta.id, _status: status };
  if (error) {
    frame._error = error.code;
    if (error.params) frame._params = error.params;
  }
  if (meta.info) frame._info = meta.info.value;
  if (meta.parent !== undefined) frame._parent = meta.parent;
  if (cached) frame._cached = true;
  return frame;
}

export function sessionFrame(session: string, error?: { code: ErrorCode; params?: JsonObject }): Frame {
  const frame: Frame = { _session: session, _task: 'SESSION', _status: error ? 'ERROR' : 'SUCCESS' };
  if (error) {
    frame._error = error.code;
    if (error.params) frame._params = error.params;
  }
  return frame;
}

// The reserved fields of one task's item frames, serialised once per task, not once per item
// (a search may stream 100,000 items: bench/05-streaming). One entry: items come task by task.
let suffixMeta: TaskMeta | undefined;
let suffixText = '';
function reservedSuffix(meta: TaskMeta): string {
  if (meta !== suffixMeta) {
    const reserved: Record<string, Json> = { _session: meta.session, _task: meta.kind, _id: meta.id, _status: 'SENDING' };
    if (meta.info) reserved._info = meta.info.value;
    if (meta.parent !== undefined) reserved._parent = meta.parent;
    suffixText = JSON.stringify(reserved).slice(1); // without its '{'
    suffixMeta = meta;
  }
  return suffixText;
}

/** What an item frame adds to the item's own JSON text: the reserved fields and a comma. */
export function itemFrameOverhead(meta: TaskMeta): number {
  return reservedSuffix(meta).length + 1;
}

/** An item as the script returned it plus the reserved fields, serialised for the socket. */
export function itemFrameText(item: JsonObject, meta: TaskMeta): string {
  let own = false;
  for (const name of RESERVED) if (Object.prototype.hasOwnProperty.call(item, name)) own = true;
  if (!own) {
    // The usual item: its own JSON with the reserved fields appended gives the very bytes of
    // the copy below, without copying the item.
    const body = JSON.stringify(item);
    return body === '{}' ? `{${reservedSuffix(meta)}` : `${body.slice(0, -1)},${reservedSuffix(meta)}`;
  }
  const frame: Record<string, Json | undefined> = { ...item };
  for (const name of RESERVED) if (Object.prototype.hasOwnProperty.call(frame, name)) delete frame[name];
  frame._session = meta.session;
  frame._task = meta.kind;
  frame._id = meta.id;
  frame._status = 'SENDING';
  if (meta.info) frame._info = meta.info.value;
  if (meta.parent !== undefined) frame._parent = meta.parent;
  return JSON.stringify(frame);
}
