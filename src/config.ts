// Builds the typed Config from its sources, later wins:
// defaults → application.properties (or --config PATH) → environment → command line.
// Every value travels as a string until the end, then each key's zod schema checks and converts it,
// so a bad value is reported the same way whatever source it came from.
//
// Each key is declared once, in KEYS below: its name, default, meaning, validation and the
// Config property it lands on (`to`). The Config type is inferred from that table, so a new
// key is one line here (plus its row in docs/configuration.md, which a test keeps in step).

import fs from 'node:fs';
import path from 'node:path';
import { parseLines } from 'dot-properties';
import { z } from 'zod';
import { parseCommand } from './command.js';

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
// A file name inside the log folder: no folder part of its own.
const fileName = text.refine((name) => !name.includes('/') && name !== '.' && name !== '..');

/** redis://[user:password@]host[:port][/db] or rediss://… (TLS); nothing else, so a typo fails at startup. */
export function isRedisUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (
    (url.protocol === 'redis:' || url.protocol === 'rediss:') &&
    url.hostname !== '' &&
    /^(\/\d*)?$/.test(url.pathname) &&
    url.search === '' &&
    url.hash === ''
  );
}
// Empty = no shared cache (null).
const redisUrl = z
  .string()
  .trim()
  .refine((s) => s === '' || isRedisUrl(s))
  .transform((s) => (s === '' ? null : s));

interface KeySpec<S extends z.ZodType = z.ZodType, P extends string = string> {
  /** Where the value lands in Config, as a dotted property path ("timeout.scriptMs"). */
  to: P;
  /** Written as a properties file would hold it. */
  default: string;
  meaning: string;
  /** Completes "expected …" in a ConfigError. */
  expected: string;
  schema: S;
}
const key = <const P extends string, S extends z.ZodType<unknown, string>>(
  to: P,
  def: string,
  meaning: string,
  expected: string,
  schema: S,
): KeySpec<S, P> => ({ to, default: def, meaning, expected, schema });

const PHP = '/usr/bin/php -d display_errors=stderr';
const SECS = `a number of seconds > 0 (at most ${MAX_SECONDS})`;
const SECS0 = `a number of seconds >= 0 (at most ${MAX_SECONDS})`;
const SIZE = 'a size > 0 such as 512, 64KB, 16MB or 1GB';
const FIELD = 'a non-empty field name';
const COMMAND = 'a command line without shell operators (| ; > &)';
const BOOL = 'true or false (also 1/0, yes/no)';

// Every key, in the order of the table in docs/configuration.md.
const KEYS = {
  'server.port': key('server.port', '8000', 'port', 'an integer port 0..65535', int(0, 65535)),
  'server.address': key('server.address', '127.0.0.1', 'listen address (localhost only unless set)', 'a non-empty address', text),
  'server.allowed-origins': key(
    'server.allowedOrigins',
    '',
    'comma list of allowed `Origin`s for WebSockets; empty = any',
    'a comma list of origins',
    // null = any Origin is allowed.
    list.transform((l) => (l.length > 0 ? l : null)),
  ),
  'logging.level.me.blzr.aggregator': key(
    'logging.level',
    'INFO',
    'TRACE/DEBUG/INFO/WARN/ERROR',
    'one of TRACE, DEBUG, INFO, WARN, ERROR',
    oneOf(z.enum(['trace', 'debug', 'info', 'warn', 'error'])),
  ),
  'logging.file.path': key('logging.path', 'logs', 'folder of `aggregator.log`', 'a non-empty folder path', text),
  'logging.file.max-size': key('logging.maxSizeBytes', '10MB', 'rotate at this size', SIZE, size),
  'logging.file.max-history': key('logging.maxHistory', '10', 'rotated files kept', 'an integer >= 1', int(1)),
  'aggregator.script.suppliers': key('script.suppliers', `${PHP} script/suppliers.php`, 'command line of the suppliers script', COMMAND, commandLine),
  'aggregator.script.items': key('script.items', `${PHP} script/items.php`, 'command line of the items script', COMMAND, commandLine),
  'aggregator.script.echo': key('script.echo', `${PHP} script/script.php`, 'command line of the echo script', COMMAND, commandLine),
  'aggregator.timeout.script': key('timeout.scriptMs', '5', 'seconds one script may run', SECS, seconds(false)),
  'aggregator.timeout.session': key('timeout.sessionMs', '30', 'seconds one search may take', SECS, seconds(false)),
  'aggregator.timeout.queue': key('timeout.queueMs', '0', '0 = off; else seconds a task may wait queued', SECS0, seconds(true)),
  'aggregator.timeout.request': key('timeout.requestMs', '10', 'seconds a new socket may wait before its request', SECS, seconds(false)),
  'aggregator.timeout.kill': key('timeout.killMs', '1', 'seconds between SIGTERM and SIGKILL', SECS, seconds(false)),
  'aggregator.pool.executor': key('pool.executor', '20', 'script processes at once', 'an integer >= 1', int(1)),
  'aggregator.pool.order': key('pool.order', 'fair', '`fair` or `fifo`', 'fair or fifo', oneOf(z.enum(['fair', 'fifo']))),
  'aggregator.script.runner': key('script.runner', 'warm', '`warm` or `spawn`', 'warm or spawn', oneOf(z.enum(['warm', 'spawn']))),
  'aggregator.script.suppliers-input': key(
    'script.suppliersInput',
    'request',
    '`request` or `params`: the suppliers script reads the request, or `{"params": request}` as the original did',
    'request or params',
    oneOf(z.enum(['request', 'params'])),
  ),
  'aggregator.cache.ttl': key('cache.ttlMs', '0', 'seconds an items answer is reused; 0 = no cache', SECS0, seconds(true)),
  'aggregator.cache.size': key('cache.sizeBytes', '64MB', 'in-process cache size (least recently used out first)', SIZE, size),
  'aggregator.cache.redis': key(
    'cache.redis',
    '',
    '`redis://host:port/db`: one cache shared by every instance; empty = none',
    'empty, or a URL redis://host[:port][/db] or rediss://host[:port][/db]',
    redisUrl,
  ),
  'aggregator.metrics.suppliers': key('metrics.suppliers', '100', 'distinct supplier names in /metrics', 'an integer >= 1', int(1)),
  'aggregator.fields.request': key(
    'fields.request',
    'code,brand,apikey,analog',
    'required request fields',
    'a non-empty comma list of field names',
    list.pipe(z.array(z.string()).min(1)),
  ),
  'aggregator.fields.items': key('fields.items', 'items', 'items array field', FIELD, text),
  'aggregator.fields.suppliers': key('fields.suppliers', 'suppliers', 'suppliers array field', FIELD, text),
  'aggregator.fields.info': key('fields.info', 'info', 'supplier field echoed as `_info`', FIELD, text),
  'aggregator.fields.faulty': key('fields.faulty', 'code,brand,analog', 'request fields echoed as `_params` on errors', 'a comma list of field names', list),
  'aggregator.limit.sessions': key('limit.sessions', '10000', 'open sessions at once', 'an integer >= 1', int(1)),
  'aggregator.limit.tasks': key('limit.tasks', '10000', 'tasks in one session; more get `E_SCRIPT_CANCELLED` at once', 'an integer >= 1', int(1)),
  'aggregator.limit.request-size': key('limit.requestSizeBytes', '64KB', 'largest request frame (close 1009 above it)', SIZE, size),
  'aggregator.limit.output-size': key('limit.outputSizeBytes', '16MB', 'largest script stdout', SIZE, size),
  'aggregator.limit.send-buffer': key(
    'limit.sendBufferBytes',
    '16MB',
    'bytes queued to one slow browser (with the frames still waiting, estimated); past it the session ends as if the browser closed it',
    SIZE,
    size,
  ),
  'aggregator.metrics.node': key('metrics.node', 'node0', '`instance` label', 'a non-empty label', text),
  'aggregator.debug': key('debug', 'false', 'serve `/debug`', BOOL, bool),
  'aggregator.demo': key('demo', 'true', 'serve the demo page', BOOL, bool),
} satisfies Record<string, KeySpec>;

/** The log file's name inside logging.file.path, unless the original's `logging.file` names another. */
export const DEFAULT_LOG_FILE = 'aggregator.log';
/** The log file's name has no key of its own: only the original's `logging.file` alias sets it. */
const LOG_NAME = 'logging.file (its file name)';
// Values no source sets by name; each is set through an alias, else keeps its default.
const DERIVED = {
  [LOG_NAME]: key('logging.file', DEFAULT_LOG_FILE, 'file name inside logging.file.path', 'a file name', fileName),
} satisfies Record<string, KeySpec>;

const ROWS = { ...KEYS, ...DERIVED };
type Row = keyof typeof ROWS;

// The Config type, inferred from ROWS: each row's `to` path holds its schema's output type.
type Nest<P extends string, V> = P extends `${infer Head}.${infer Rest}` ? { [K in Head]: Nest<Rest, V> } : { [K in P]: V };
type Intersect<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
type Flatten<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]: Flatten<T[K]> } : T;
type ConfigOf<T extends Record<string, KeySpec>> = Flatten<
  Intersect<{ [K in keyof T]: Nest<T[K]['to'], z.output<T[K]['schema']>> }[keyof T]>
>;

/** The typed configuration every module reads. */
export type Config = ConfigOf<typeof ROWS>;
export type LogLevel = Config['logging']['level'];
export type PoolOrder = Config['pool']['order'];
export type ScriptRunner = Config['script']['runner'];
export type SuppliersInput = Config['script']['suppliersInput'];

/**
 * Keys of the original v0.7 (a Spring Boot service) that mean one of ours. Each expands to
 * the rows it sets; `expected` describes the alias's own value in a ConfigError.
 */
const ALIASES: Record<string, { expected: string; expand(value: string): [Row, string][] }> = {
  // A file path: its folder is logging.file.path, its base name the log file's name.
  'logging.file': {
    expected: 'a file path such as logs/aggregator.log',
    expand(value) {
      const v = value.trim();
      const slash = v.lastIndexOf('/');
      const folder = slash < 0 ? '.' : slash === 0 ? '/' : v.slice(0, slash);
      return [
        ['logging.file.path', folder],
        [LOG_NAME, v.slice(slash + 1)],
      ];
    },
  },
  'aggregator.prometheus.node': { expected: 'a non-empty label', expand: (value) => [['aggregator.metrics.node', value]] },
};

/** Accepted for compatibility with the original, then ignored without a warning. */
const IGNORED_KEYS = new Set(['aggregator.pool.watchdog']);
// Logback patterns: our log lines are JSON, there is no pattern to set.
const IGNORED_PREFIXES = ['logging.pattern.'];
const isIgnored = (k: string) => IGNORED_KEYS.has(k) || IGNORED_PREFIXES.some((p) => k.startsWith(p));

type Key = keyof typeof KEYS;
const keyEntries = Object.entries(KEYS) as [Key, KeySpec][];
const rowEntries = Object.entries(ROWS) as [Row, KeySpec][];
export const DEFAULTS: Record<string, string> = Object.fromEntries(keyEntries.map(([k, s]) => [k, s.default]));
export const KEY_DOCS: Record<string, { default: string; meaning: string }> = Object.fromEntries(
  keyEntries.map(([k, s]) => [k, { default: s.default, meaning: s.meaning }]),
);
/** Where each key lands in Config ("aggregator.timeout.script" → "timeout.scriptMs"), derived rows included. */
export const CONFIG_PATHS: Record<string, string> = Object.fromEntries(rowEntries.map(([k, s]) => [k, s.to]));
/** The original's keys read as ours. */
export const ALIAS_KEYS: readonly string[] = Object.keys(ALIASES);

const isKey = (k: string): k is Key => Object.hasOwn(KEYS, k);
/** aggregator.limit.output-size → AGGREGATOR_LIMIT_OUTPUT_SIZE */
export const envName = (k: string): string => k.toUpperCase().replace(/[.-]/g, '_');

export interface LoadOptions {
  /** Command-line arguments only (process.argv.slice(2)). */
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** One setting as a source holds it: key, value, and where it came from (for messages). */
type Setting = [key: string, value: string, label: string];

export function loadConfig(opts: LoadOptions): { config: Config; warnings: string[]; sources: Record<string, string> } {
  const raw: Record<string, string> = Object.fromEntries(rowEntries.map(([k, s]) => [k, s.default]));
  const sources: Record<string, string> = Object.fromEntries(keyEntries.map(([k]) => [k, 'default']));
  // A row set through an alias reports the alias and its value when it is invalid.
  const viaAlias = new Map<Row, { alias: string; value: string; label: string }>();
  const labels = new Map<Row, string>();
  const warnings: string[] = [];

  /**
   * Applies one source. Within a source a key beats its alias whatever their order (the key
   * is the current name; the alias is usually a leftover), with a warning; across sources the
   * later source wins as for any key.
   */
  const apply = (settings: Setting[], sourceName: string): void => {
    const direct = new Map<Row, [string, string]>();
    const aliased = new Map<Row, { alias: string; value: string; label: string; part: string }>();
    for (const [k, value, label] of settings) {
      const alias = ALIASES[k];
      if (isKey(k)) direct.set(k, [value, label]);
      else if (alias) for (const [row, part] of alias.expand(value)) aliased.set(row, { alias: k, value, label, part });
      else if (!isIgnored(k)) warnings.push(`unknown configuration key "${k}" in ${label}, ignored`);
    }
    for (const [row, a] of aliased) {
      if (direct.has(row)) {
        warnings.push(`${row} and the original's ${a.alias} are both set in ${sourceName}: ${row} wins`);
        continue;
      }
      raw[row] = a.part;
      labels.set(row, `${a.label} (as ${a.alias})`);
      viaAlias.set(row, a);
      if (isKey(row)) sources[row] = `${a.label} (as ${a.alias})`;
    }
    for (const [row, [value, label]] of direct) {
      raw[row] = value;
      labels.set(row, label);
      viaAlias.delete(row);
      sources[row] = label;
    }
  };

  // The command line is read first only to find --config; its settings are applied last.
  let configPath: string | undefined;
  const argSettings: Setting[] = [];
  for (let i = 0; i < opts.argv.length; i++) {
    const arg = opts.argv[i] ?? '';
    const pair = /^(?:-D|--)([^=]+)=(.*)$/s.exec(arg);
    if (arg === '--config' || arg.startsWith('--config=')) {
      configPath = arg === '--config' ? opts.argv[++i] : arg.slice('--config='.length);
      if (!configPath) throw new ConfigError('--config needs a file path');
    } else if (pair) {
      argSettings.push([pair[1] ?? '', pair[2] ?? '', 'argv']);
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
    const lines = parseLines(content).filter((line): line is string[] => Array.isArray(line));
    apply(
      lines.map((line): Setting => [line[0] ?? '', line[1] ?? '', file]),
      file,
    );
  }

  // Only known keys (and aliases) are looked up: the environment holds plenty of unrelated variables.
  const envSettings: Setting[] = [];
  const port = opts.env['PORT'];
  if (port !== undefined) envSettings.push(['server.port', port, 'env:PORT']);
  for (const k of [...ALIAS_KEYS, ...keyEntries.map(([k]) => k)]) {
    const value = opts.env[envName(k)];
    if (value !== undefined) envSettings.push([k, value, `env:${envName(k)}`]);
  }
  apply(envSettings, 'the environment');

  apply(argSettings, 'the command line');

  const values: Record<string, unknown> = {};
  for (const [row, spec] of rowEntries) {
    const result = spec.schema.safeParse(raw[row]);
    if (!result.success) {
      const alias = viaAlias.get(row);
      if (alias) {
        throw new ConfigError(
          `invalid value for ${alias.alias}: ${JSON.stringify(alias.value)} (expected ${ALIASES[alias.alias]?.expected ?? spec.expected}; set by ${alias.label})`,
          alias.alias,
          alias.value,
        );
      }
      throw new ConfigError(
        `invalid value for ${row}: ${JSON.stringify(raw[row])} (expected ${spec.expected}; set by ${labels.get(row) ?? 'default'})`,
        row,
        raw[row],
      );
    }
    values[row] = result.data;
  }
  return { config: toConfig(values), warnings, sources };
}

/** Puts each row's value at its `to` path. */
function toConfig(values: Record<string, unknown>): Config {
  const config: Record<string, unknown> = {};
  for (const [row, spec] of rowEntries) {
    const names = spec.to.split('.');
    const leaf = names.pop() ?? '';
    let node = config;
    for (const name of names) node = (node[name] ??= {}) as Record<string, unknown>;
    node[leaf] = values[row];
  }
  // The one cast: ConfigOf<typeof ROWS> says what this loop builds.
  return config as Config;
}
