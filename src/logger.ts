// pino to stdout (for the journal) and to logging.file.path/aggregator.log, rotated by size.
// Secrets are redacted by path as a safety net; the code also never logs params or apikey.
import fs from 'node:fs';
import { pino, type Logger } from 'pino';
import { createStream } from 'rotating-file-stream';
import type { Config } from './config-types.js';

export type { Logger };

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

export interface LoggerHandle {
  log: Logger;
  /** Flushes and closes the file stream. */
  close(): Promise<void>;
}

export function createLogger(config: Config, opts: { stdout?: boolean } = {}): LoggerHandle {
  fs.mkdirSync(config.logging.path, { recursive: true });
  const file = createStream('aggregator.log', {
    path: config.logging.path,
    size: `${Math.max(1, Math.floor(config.logging.maxSizeBytes / 1024))}K`,
    maxFiles: config.logging.maxHistory,
  });
  // A failing log file must not take the service down; say so on stderr once.
  file.on('error', (err: Error) => process.stderr.write(`aggregator: log file error: ${err.message}\n`));
  const streams: pino.StreamEntry[] = [{ level: config.logging.level, stream: file }];
  if (opts.stdout !== false) streams.push({ level: config.logging.level, stream: process.stdout });
  const log = pino(
    { level: config.logging.level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { pid: process.pid } },
    pino.multistream(streams),
  );
  return {
    log,
    close: () =>
      new Promise<void>((resolve) => {
        log.flush();
        file.end(() => resolve());
      }),
  };
}
