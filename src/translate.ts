// The JSON translation steps of docs/protocol.md (the request, the suppliers step, the items step), as pure functions:
// request frame → suppliers stdin, suppliers stdout → supplier list, items stdout → items.
import type { SuppliersInput } from './config-types.js';
import { type Json, type JsonObject, MAX_DEPTH, isObject, nestsDeeper, parseJson } from './json.js';

export type RequestResult =
  | { ok: true; request: JsonObject; params: JsonObject }
  | { ok: false; code: 'E_REQUEST_JSON' | 'E_ILLEGAL_REQUEST'; params?: JsonObject };

function isScalar(value: Json | undefined): boolean {
  return value !== undefined && value !== null && typeof value !== 'object';
}

/** Copies only the named fields that hold scalars (so `__proto__` and friends stay data). */
function pick(from: JsonObject, names: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const name of names) {
    if (Object.prototype.hasOwnProperty.call(from, name) && isScalar(from[name])) {
      Object.defineProperty(out, name, { value: from[name], enumerable: true, writable: true, configurable: true });
    }
  }
  return out;
}

export function parseRequest(raw: string, fields: { request: readonly string[]; faulty: readonly string[] }): RequestResult {
  const parsed = parseJson(raw);
  if (!parsed) return { ok: false, code: 'E_REQUEST_JSON' };
  const value = parsed.value;
  if (!isObject(value)) return { ok: false, code: 'E_ILLEGAL_REQUEST' };
  const params = pick(value, fields.faulty);
  const request = pick(value, fields.request);
  const complete = fields.request.every((name) => Object.prototype.hasOwnProperty.call(request, name));
  return complete ? { ok: true, request, params } : { ok: false, code: 'E_ILLEGAL_REQUEST', params };
}

/** One line of JSON for a script's stdin (the runner adds the newline). */
export function stdinLine(value: JsonObject): string {
  return JSON.stringify(value);
}

/**
 * The suppliers script's stdin line (aggregator.script.suppliers-input): the whitelisted
 * request itself, or wrapped as `{"params": request}`, the shape the original v0.7 sent, so
 * its scripts (`$in["params"]["code"]`) run unchanged.
 */
export function suppliersStdin(request: JsonObject, mode: SuppliersInput): string {
  return stdinLine(mode === 'params' ? { params: request } : request);
}

function arrayOfObjects(value: Json | undefined): value is JsonObject[] {
  return Array.isArray(value) && value.every(isObject);
}

export type SuppliersResult = { ok: true; suppliers: JsonObject[] } | { ok: false; code: 'E_SUPPLIERS_JSON' | 'E_SUPPLIERS_RESPONSE' };

export function parseSuppliers(stdout: string, field: string): SuppliersResult {
  const parsed = parseJson(stdout);
  if (!parsed) return { ok: false, code: 'E_SUPPLIERS_JSON' };
  const value = parsed.value;
  if (!isObject(value) || !Object.prototype.hasOwnProperty.call(value, field)) return { ok: false, code: 'E_SUPPLIERS_RESPONSE' };
  // Too deep to be sent on as an items script's stdin.
  if (stdout.length > 2 * MAX_DEPTH && nestsDeeper(value)) return { ok: false, code: 'E_SUPPLIERS_RESPONSE' };
  const list = value[field];
  return arrayOfObjects(list) ? { ok: true, suppliers: list } : { ok: false, code: 'E_SUPPLIERS_RESPONSE' };
}

export type ItemsResult =
  | { ok: true; items: JsonObject[]; suppliers: JsonObject[] }
  | { ok: false; code: 'E_ITEMS_JSON' | 'E_ITEMS_RESPONSE' };

export function parseItems(stdout: string, fields: { items: string; suppliers: string }): ItemsResult {
  const parsed = parseJson(stdout);
  if (!parsed) return { ok: false, code: 'E_ITEMS_JSON' };
  const value = parsed.value;
  if (!isObject(value) || !Object.prototype.hasOwnProperty.call(value, fields.items)) return { ok: false, code: 'E_ITEMS_RESPONSE' };
  // Too deep to be sent on as frames (or as nested suppliers' stdin).
  if (stdout.length > 2 * MAX_DEPTH && nestsDeeper(value)) return { ok: false, code: 'E_ITEMS_RESPONSE' };
  const items = value[fields.items];
  if (!arrayOfObjects(items)) return { ok: false, code: 'E_ITEMS_RESPONSE' };
  // `suppliers` is optional; null counts as absent, anything else must be an array of objects.
  const nested = Object.prototype.hasOwnProperty.call(value, fields.suppliers) ? value[fields.suppliers] : null;
  if (nested === null || nested === undefined) return { ok: true, items, suppliers: [] };
  return arrayOfObjects(nested) ? { ok: true, items, suppliers: nested } : { ok: false, code: 'E_ITEMS_RESPONSE' };
}
