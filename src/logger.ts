// pino to stdout (for the journal) and to logging.file.path/aggregator.log, rotated by size.
// (The file's name is config.logging.file: aggregator.log unless the original's `logging.file`
// key named another.) JSON lines everywhere, except on a terminal: there a person reads them
// (`npm run demo`), so stdout gets them through pino-pretty.
// Secrets are redacted twice: by path (cheap, the usual places) and by a deep scrub of every
// logged object (any depth), because the code never means to log params or apikey but a
// future log call might pass a supplier or a request whole.
import fs from 'node:fs';
import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import { createStream } from 'rotating-file-stream';
import { DEFAULT_LOG_FILE } from './config.js';
import type { Config } from './config-types.js';

export type { Logger };

/** Default file name inside logging.file.path; rotated copies are aggregator.log.1 … .N (newest first). */
export const LOG_FILE = DEFAULT_LOG_FILE;
export const CENSOR = '[redacted]';
/** Keys whose values never reach a log line, at any depth. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(['params', 'apikey']);

export const REDACT_PATHS = [
  'params',
  '*.params',
  '*.*.params',
  'apikey',
  '*.apikey',
  '*.*.apikey',
  'request.apikey',
  'supplier.params',
];

const MAX_DEPTH = 8;

/**
 * A copy of `value` with every SECRET_KEYS value replaced by CENSOR; the same object when
 * nothing needed censoring (no copy on the hot path). Errors are left to pino's serializer.
 */
export function scrub(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object' || value instanceof Error || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    value.forEach((v, i) => {
      const s = scrub(v, depth + 1);
      if (s !== v) (out ??= [...value])[i] = s;
    });
    return out ?? value;
  }
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const s = SECRET_KEYS.has(k) ? CENSOR : scrub(v, depth + 1);
    if (s !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = s;
  }
  return out ?? value;
}

/**
 * A stream that writes each JSON line readably (time, level, message, then the fields on the
 * same line). pino-pretty's formatter is called in this process, synchronously: no worker
 * thread, no extra stream pipeline, and nothing buffered that an exit could lose. It only
 * runs for a terminal, where a person reads a few lines a second.
 */
export function terminalStream(out: NodeJS.WritableStream, colors: boolean): { write(line: string): void } {
  // Loaded only for a terminal: the service's stdout is the journal, and pino-pretty would cost
  // every instance about 10 MB of RSS for nothing.
  const { prettyFactory } = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  const format = prettyFactory({
    colorize: colors,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
    singleLine: true,
  });
  return { write: (line: string) => void out.write(format(line)) };
}

export interface LoggerOptions {
  /** false: the file only (tests). */
  stdout?: boolean;
  /** Readable lines instead of JSON on stdout; default: when stdout is a terminal. */
  pretty?: boolean;
  /** Where the stdout lines go (default process.stdout). */
  out?: NodeJS.WritableStream;
}

export interface LoggerHandle {
  log: Logger;
  /** Flushes and closes the file stream. */
  close(): Promise<void>;
}

/**
 * rotating-file-stream in logrotate numbering (`rotate: N`): the live file plus at most N
 * rotated ones, each rotation a chain of renames. Its other mode (`maxFiles`) also keeps a
 * history file beside them, and deletes the oldest only after the rename, so the folder
 * would briefly hold N + 2 files and always N + 2 once full.
 */
function openFile(config: Config) {
  fs.mkdirSync(config.logging.path, { recursive: true });
  return createStream(config.logging.file, {
    path: config.logging.path,
    size: `${config.logging.maxSizeBytes}B`,
    rotate: config.logging.maxHistory,
  });
}

export function createLogger(config: Config, opts: LoggerOptions = {}): LoggerHandle {
  const file = openFile(config);
  // A failing log file must not take the service down (stdout still reaches the journal);
  // after an error rfs stays closed, so say so on stderr once.
  let failed = false;
  file.on('error', (err: Error) => {
    if (!failed) process.stderr.write(`aggregator: log file ${config.logging.file} failed, logging to stdout only: ${err.message}\n`);
    failed = true;
  });
  // Lines logged after close() (a late task callback during shutdown) go to stdout only: a
  // write after end() would error and destroy the stream with its unflushed lines.
  let closing = false;
  const toFile = { write: (line: string) => void (closing || failed || file.write(line)) };
  const streams: pino.StreamEntry[] = [{ level: config.logging.level, stream: toFile }];
  if (opts.stdout !== false) {
    const out = opts.out ?? process.stdout;
    const tty = out === process.stdout && process.stdout.isTTY;
    // The journal (and any pipe) keeps JSON lines; only a terminal gets them pretty.
    const pretty = opts.pretty ?? tty;
    const colors = tty && process.stdout.hasColors();
    streams.push({ level: config.logging.level, stream: pretty ? terminalStream(out, colors) : out });
  }
  const log = pino(
    {
      level: config.logging.level,
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      formatters: {
        log: (obj) => scrub(obj) as Record<string, unknown>,
        bindings: (bindings) => scrub(bindings) as pino.Bindings,
      },
      base: { pid: process.pid },
    },
    pino.multistream(streams),
  );
  return {
    log,
    close: () =>
      new Promise<void>((resolve) => {
        if (closing || failed || file.destroyed) return resolve();
        closing = true;
        file.end(() => resolve());
      }),
  };
}
