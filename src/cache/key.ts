// The items cache key (issue 13): which answers may be shared. Two ITEMS tasks may share an
// answer only when the same items command would get the very same stdin line, because the
// supplier object on that line carries the supplier's `params` (a shop's login, password,
// API key): two shops' logins must never share answers. The key is a SHA-256 of both, so the
// clear text (params included) never reaches the store, Redis or a log line.
import { createHash } from 'node:crypto';

/**
 * Bumped when what a key stands for changes (the hashed text, or the meaning of the stored
 * value), so a shared Redis never serves an answer stored by an older aggregator under a
 * key that now means something else.
 */
export const KEY_VERSION = 'v1';

/** `v1:` + 64 lower-case hex digits. */
export const KEY_PATTERN = /^v1:[0-9a-f]{64}$/;

/**
 * The cache key of one items run: `command` is the items command line as configured
 * (`aggregator.script.items`), `stdinLine` the exact text written to the script's stdin
 * (pass it byte for byte as the runner writes it, trailing newline and all: a different
 * spelling of the same JSON is a different key, which only costs a miss).
 */
export function cacheKey(command: string, stdinLine: string): string {
  // The command's length first makes the encoding unambiguous: without it "a\nb" + "c" and
  // "a" + "b\nc" would hash the same text (a command line may hold a quoted newline).
  const hash = createHash('sha256')
    .update(`${KEY_VERSION}\n${Buffer.byteLength(command)}:${command}\n`)
    .update(stdinLine)
    .digest('hex');
  return `${KEY_VERSION}:${hash}`;
}
