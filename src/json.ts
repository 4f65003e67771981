// JSON value types shared by the translation steps and frames.
export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** JSON.parse that tolerates a UTF-8 BOM; undefined when the text is not JSON. */
export function parseJson(text: string): { value: Json } | undefined {
  try {
    return { value: JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) as Json };
  } catch {
    return undefined;
  }
}

/** Deepest nesting a script's answer may have: JSON.parse takes any depth, but sending a value
 *  on (JSON.stringify of a frame or of a supplier's stdin) overflows the stack at about 4000. */
export const MAX_DEPTH = 1000;

/** Whether `value` nests arrays/objects deeper than `max` (iterative: no stack of its own;
 *  parallel arrays and for-in keep it at about half a JSON.parse of the same text). */
export function nestsDeeper(value: Json, max = MAX_DEPTH): boolean {
  const values: Json[] = [value];
  const depths: number[] = [1];
  for (let v = values.pop(); v !== undefined; v = values.pop()) {
    const depth = depths.pop() ?? 0;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) return true;
    if (Array.isArray(v)) {
      for (const c of v) {
        if (typeof c === 'object' && c !== null) {
          values.push(c);
          depths.push(depth + 1);
        }
      }
    } else {
      for (const k in v) {
        const c = v[k];
        if (typeof c === 'object' && c !== null) {
          values.push(c);
          depths.push(depth + 1);
        }
      }
    }
  }
  return false;
}
