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
