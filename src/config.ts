// Builds the typed Config from the sources of SPEC section 8, later wins:
// defaults → application.properties (or --config PATH) → environment → command line.
// Every value travels as a string until the end, then each key's zod schema checks and converts it,
// so a bad value is reported the same way whatever source it came from.

import fs from 'node:fs';
import path from 'node:path';
import { parseLines } from 'dot-properties';
import { z } from 'zod';
import { parseCommand } from './command.js';
import type { Config } from './config-types.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    message: string,
    readonly key?: string,
    readonly value?: string,
  ) {
    super(message);
  }
}

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([kmg]?)b?$/i;
const UNIT: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Bytes from "123", "64KB", "16 mb", "1G", "1.5MB" (KB = 1024; fractions round down). */
export function parseSize(text: string): number {
  const m = SIZE_RE.exec(text.trim());
  const bytes = m ? Math.floor(Number(m[1]) * (UNIT[(m[2] ?? '').toLowerCase()] ?? NaN)) : NaN;
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`not a size: ${JSON.stringify(text)}`);
  return bytes;
}

// setTimeout turns any delay above 2^31-1 ms into 1 ms, so a huge timeout would fire at once.
const MAX_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.string().trim().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(min).max(max));
const seconds = (zeroAllowed: boolean) =>
  z
    .string()
    .trim()
    .regex(/^(\d+\.?\d*|\.\d+)$/)
    .transform(Number)
    .pipe(z.number().min(zeroAllowed ? 0 : Number.MIN_VALUE).max(MAX_SECONDS))
    // Round to ms, but never turn a tiny positive value into 0 (which means "off" or "at once").
    .transform((s) => (s === 0 ? 0 : Math.max(1, Math.round(s * 1000))));
const size = z
  .string()
  .refine((s) => SIZE_RE.test(s.trim()))
  .transform(parseSize)
  .pipe(z.number().int().min(1).max(Number.MAX_SAFE_INTEGER));
const text = z.string().trim().min(1);
// A script command must split into a program and arguments without shell operators.
const commandLine = text.refine((line) => {
  try {
    parseCommand(line);
    return true;
  } catch {
    return false;
  }
});
const list = z.string().transform((s) => s.split(',').map((x) => x.trim()).filter((x) => x !== ''));
const bool = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no']))
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const oneOf = <T extends Readonly<Record<string, string>>>(values: z.ZodEnum<T>) => z.string().trim().toLowerCase().pipe(values);

interface KeySpec<S extends z.ZodType = z.ZodType> {
  default: string;
  meaning: string;
  /** Completes "expected …" in a ConfigError. */
  expected: string;
  schema: S;
}
const key = <S extends z.ZodType>(def: string, meaning: string, expected: string, schema: S): KeySpec<S> => ({
  default: def,
  meaning,
  expected,
  schema,
});

const PHP = '/usr/bin/php -d display_errors=stderr';
const SECS = `a number of seconds > 0 (at most ${MAX_SECONDS})`;
const SIZE = 'a size > 0 such as 512, 64KB, 16MB or 1GB';
const FIELD = 'a non-empty field name';

// The SPEC section 8 table, in its order. Defaults are written as a properties file would hold them.
const KEYS = {
  'server.port': key('8000', 'port', 'an integer port 0..65535', int(0, 65535)),
  'server.address': key('127.0.0.1', 'listen address (localhost only unless set)', 'a non-empty address', text),
  'server.allowed-origins': key(
    '',
    'comma list of allowed `Origin`s for WebSockets; empty = any',
    'a comma list of origins',
    list.transform((l) => (l.length > 0 ? l : null)),
  ),
  'logging.level.me.blzr.aggregator': key(
    'INFO',
    'TRACE/DEBUG/INFO/WARN/ERROR',
    'one of TRACE, DEBUG, INFO, WARN, ERROR',
    oneOf(z.enum(['trace', 'debug', 'info', 'warn', 'error'])),
  ),
  'logging.file.path': key('logs', 'folder of `aggregator.log`', 'a non-empty folder path', text),
  'logging.file.max-size': key('10MB', 'rotate at this size', SIZE, size),
  'logging.file.max-history': key('10', 'rotated files kept', 'an integer >= 1', int(1)),
  'aggregator.script.suppliers': key(`${PHP} script/suppliers.php`, 'command line of the suppliers script', 'a command line without shell operators (| ; > &)', commandLine),
  'aggregator.script.items': key(`${PHP} script/items.php`, 'command line of the items script', 'a command line without shell operators (| ; > &)', commandLine),
  'aggregator.script.echo': key(`${PHP} script/script.php`, 'command line of the echo script', 'a command line without shell operators (| ; > &)', commandLine),
  'aggregator.timeout.script': key('5', 'seconds one script may run', SECS, seconds(false)),
  'aggregator.timeout.session': key('30', 'seconds one search may take', SECS, seconds(false)),
  'aggregator.timeout.queue': key(
    '0',
    '0 = off; else seconds a task may wait queued',
    `a number of seconds >= 0 (at most ${MAX_SECONDS})`,
    seconds(true),
  ),
  'aggregator.timeout.request': key('10', 'seconds a new socket may wait before its request', SECS, seconds(false)),
  'aggregator.timeout.kill': key('1', 'seconds between SIGTERM and SIGKILL', SECS, seconds(false)),
  'aggregator.pool.executor': key('20', 'script processes at once', 'an integer >= 1', int(1)),
  'aggregator.pool.order': key('fair', '`fair` or `fifo`', 'fair or fifo', oneOf(z.enum(['fair', 'fifo']))),
  'aggregator.script.runner': key('warm', '`warm` or `spawn`', 'warm or spawn', oneOf(z.enum(['warm', 'spawn']))),
  'aggregator.cache.ttl': key('0', 'seconds an items answer is reused; 0 = no cache', `a number of seconds >= 0 (at most ${MAX_SECONDS})`, seconds(true)),
  'aggregator.cache.size': key('64MB', 'in-process cache size', SIZE, size),
  'aggregator.cache.redis': key('', 'redis URL', 'a redis:// URL', z.string().transform((v) => (v.trim() === '' ? null : v.trim()))),
  'aggregator.metrics.suppliers': key('100', 'distinct supplier names in /metrics', 'an integer >= 1', int(1)),
  'aggregator.script.suppliers-input': key('request', '`request` or `params`', 'request or params', oneOf(z.enum(['request', 'params']))),
  'aggregator.fields.request': key(
    'code,brand,apikey,analog',
    'required request fields',
    'a non-empty comma list of field names',
    list.pipe(z.array(z.string()).min(1)),
  ),
  'aggregator.fields.items': key('items', 'items array field', FIELD, text),
  'aggregator.fields.suppliers': key('suppliers', 'suppliers array field', FIELD, text),
  'aggregator.fields.info': key('info', 'supplier field echoed as `_info`', FIELD, text),
  'aggregator.fields.faulty': key('code,brand,analog', 'request fields echoed as `_params` on errors', 'a comma list of field names', list),
  'aggregator.limit.sessions': key('10000', 'open sessions at once', 'an integer >= 1', int(1)),
  'aggregator.limit.tasks': key(
    '10000',
    'tasks in one session; more get `E_SCRIPT_CANCELLED` at once',
    'an integer >= 1',
    int(1),
  ),
  'aggregator.limit.request-size': key('64KB', 'largest request frame (close 1009 above it)', SIZE, size),
  'aggregator.limit.output-size': key('16MB', 'largest script stdout', SIZE, size),
  'aggregator.limit.send-buffer': key(
    '16MB',
    'bytes queued to one slow browser; past it the session ends as if the browser closed it',
    SIZE,
    size,
  ),
  'aggregator.metrics.node': key('node0', '`instance` label', 'a non-empty label', text),
  'aggregator.debug': key('false', 'serve `/debug`', 'true or false (also 1/0, yes/no)', bool),
  'aggregator.demo': key('true', 'serve the demo page', 'true or false (also 1/0, yes/no)', bool),
} satisfies Record<string, KeySpec>;

type Key = keyof typeof KEYS;
type Values = { [K in Key]: z.output<(typeof KEYS)[K]['schema']> };

/** Accepted for compatibility with the Java original, then ignored (SPEC 8). */
const IGNORED_KEYS = new Set(['aggregator.pool.watchdog']);

const entries = Object.entries(KEYS) as [Key, KeySpec][];
export const DEFAULTS: Record<string, string> = Object.fromEntries(entries.map(([k, s]) => [k, s.default]));
export const KEY_DOCS: Record<string, { default: string; meaning: string }> = Object.fromEntries(
  entries.map(([k, s]) => [k, { default: s.default, meaning: s.meaning }]),
);

const isKey = (k: string): k is Key => Object.hasOwn(KEYS, k);
/** aggregator.limit.output-size → AGGREGATOR_LIMIT_OUTPUT_SIZE */
export const envName = (k: string): string => k.toUpperCase().replace(/[.-]/g, '_');

export interface LoadOptions {
  /** Command-line arguments only (process.argv.slice(2)). */
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export function loadConfig(opts: LoadOptions): { config: Config; warnings: string[]; sources: Record<string, string> } {
  const raw: Record<string, string> = { ...DEFAULTS };
  const sources: Record<string, string> = Object.fromEntries(entries.map(([k]) => [k, 'default']));
  const warnings: string[] = [];
  const set = (k: string, value: string, source: string): void => {
    if (isKey(k)) {
      raw[k] = value;
      sources[k] = source;
    } else if (!IGNORED_KEYS.has(k)) {
      warnings.push(`unknown configuration key "${k}" in ${source}, ignored`);
    }
  };

  // The command line is read first only to find --config; its settings are applied last.
  let configPath: string | undefined;
  const argPairs: [string, string][] = [];
  for (let i = 0; i < opts.argv.length; i++) {
    const arg = opts.argv[i] ?? '';
    const pair = /^(?:-D|--)([^=]+)=(.*)$/s.exec(arg);
    if (arg === '--config' || arg.startsWith('--config=')) {
      configPath = arg === '--config' ? opts.argv[++i] : arg.slice('--config='.length);
      if (!configPath) throw new ConfigError('--config needs a file path');
    } else if (pair) {
      argPairs.push([pair[1] ?? '', pair[2] ?? '']);
    } else {
      warnings.push(`ignored command-line argument "${arg}" (expected -Dkey=value or --key=value)`);
    }
  }

  const file = path.resolve(opts.cwd, configPath ?? 'application.properties');
  let content: string | undefined;
  try {
    content = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Only the implicit default file may be absent; a named one that is missing is a mistake.
    if (configPath !== undefined || code !== 'ENOENT') {
      throw new ConfigError(`cannot read configuration file ${file}: ${code ?? String(err)}`);
    }
  }
  if (content !== undefined) {
    for (const line of parseLines(content)) if (Array.isArray(line)) set(line[0] ?? '', line[1] ?? '', file);
  }

  // Only known keys are looked up: the environment holds plenty of unrelated variables.
  const port = opts.env['PORT'];
  if (port !== undefined) set('server.port', port, 'env:PORT');
  for (const [k] of entries) {
    const value = opts.env[envName(k)];
    if (value !== undefined) set(k, value, `env:${envName(k)}`);
  }

  for (const [k, value] of argPairs) set(k, value, 'argv');

  const v = {} as Record<Key, unknown>;
  for (const [k, spec] of entries) {
    const result = spec.schema.safeParse(raw[k]);
    if (!result.success) {
      throw new ConfigError(
        `invalid value for ${k}: ${JSON.stringify(raw[k])} (expected ${spec.expected}; set by ${sources[k]})`,
        k,
        raw[k],
      );
    }
    v[k] = result.data;
  }
  return { config: toConfig(v as Values), warnings, sources };
}

function toConfig(v: Values): Config {
  return {
    server: { port: v['server.port'], address: v['server.address'], allowedOrigins: v['server.allowed-origins'] },
    logging: {
      level: v['logging.level.me.blzr.aggregator'],
      path: v['logging.file.path'],
      maxSizeBytes: v['logging.file.max-size'],
      maxHistory: v['logging.file.max-history'],
    },
    script: {
      suppliers: v['aggregator.script.suppliers'],
      items: v['aggregator.script.items'],
      echo: v['aggregator.script.echo'],
      suppliersInput: v['aggregator.script.suppliers-input'],
      runner: v['aggregator.script.runner'],
    },
    cache: { ttlMs: v['aggregator.cache.ttl'], sizeBytes: v['aggregator.cache.size'], redis: v['aggregator.cache.redis'] },
    timeout: {
      scriptMs: v['aggregator.timeout.script'],
      sessionMs: v['aggregator.timeout.session'],
      queueMs: v['aggregator.timeout.queue'],
      requestMs: v['aggregator.timeout.request'],
      killMs: v['aggregator.timeout.kill'],
    },
    pool: { executor: v['aggregator.pool.executor'], order: v['aggregator.pool.order'] },
    fields: {
      request: v['aggregator.fields.request'],
      items: v['aggregator.fields.items'],
      suppliers: v['aggregator.fields.suppliers'],
      info: v['aggregator.fields.info'],
      faulty: v['aggregator.fields.faulty'],
    },
    limit: {
      sessions: v['aggregator.limit.sessions'],
      tasks: v['aggregator.limit.tasks'],
      requestSizeBytes: v['aggregator.limit.request-size'],
      outputSizeBytes: v['aggregator.limit.output-size'],
      sendBufferBytes: v['aggregator.limit.send-buffer'],
    },
    metrics: { node: v['aggregator.metrics.node'], suppliers: v['aggregator.metrics.suppliers'] },
    debug: v['aggregator.debug'],
    demo: v['aggregator.demo'],
  };
}
