// The secret values a script was given on stdin: the request's `apikey`, every value under a
// supplier's `params`. Log lines are scrubbed by key (src/logger.ts), but a script may print its
// stdin, or a PHP error quoting it, on stderr, which is logged as text: these values are cut
// out of that text first.
import { SECRET_KEYS } from './logger.js';

export const REDACTED = '[redacted]';
/** Shorter values are left alone: replacing "1" everywhere would garble the text and hide nothing. */
const MIN_LENGTH = 4;

/** Every scalar under a secret key of the JSON `stdin`, as text and as JSON-escaped text. */
export function secretsOf(stdin: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(stdin);
  } catch {
    return [];
  }
  const out = new Set<string>();
  const collect = (v: unknown, secret: boolean, depth: number): void => {
    if (depth > 32 || v === null || v === undefined) return;
    if (typeof v === 'object') {
      for (const [k, c] of Object.entries(v as Record<string, unknown>)) collect(c, secret || SECRET_KEYS.has(k), depth + 1);
    } else if (secret) {
      const text = String(v);
      if (text.length >= MIN_LENGTH) out.add(text).add(JSON.stringify(text).slice(1, -1));
    }
  };
  collect(value, false, 0);
  // Longest first, so a secret that contains another is cut whole.
  return [...out].sort((a, b) => b.length - a.length);
}

export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}

/** `entry` with the secrets of `stdin` cut out of its `stderr` text (the runner's log entry). */
export function redactStderr(entry: object, stdin: string): object {
  const stderr = (entry as { stderr?: unknown }).stderr;
  if (typeof stderr !== 'string' || stderr === '') return entry;
  return { ...entry, stderr: redact(stderr, secretsOf(stdin)) };
}
