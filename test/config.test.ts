import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ALIAS_KEYS, CONFIG_PATHS, ConfigError, DEFAULTS, KEY_DOCS, isRedisUrl, loadConfig, parseSize } from '../src/config.js';
import type { Config } from '../src/config-types.js';
import { FIXTURES } from './helpers/harness.js';

/** A fresh working directory, optionally holding application.properties. */
function workdir(properties?: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aggregator-config-'));
  if (properties !== undefined) fs.writeFileSync(path.join(dir, 'application.properties'), properties);
  return dir;
}

const load = (argv: string[] = [], env: NodeJS.ProcessEnv = {}, cwd = workdir()) => loadConfig({ argv, env, cwd });

/** The ConfigError thrown by loading with one setting on the command line, or undefined. */
function errorFor(key: string, value: string): ConfigError | undefined {
  try {
    load([`-D${key}=${value}`]);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  return undefined;
}

const CONFIG_KEYS = [
  'server.port',
  'server.address',
  'server.allowed-origins',
  'logging.level.me.blzr.aggregator',
  'logging.file.path',
  'logging.file.max-size',
  'logging.file.max-history',
  'aggregator.script.suppliers',
  'aggregator.script.items',
  'aggregator.script.echo',
  'aggregator.timeout.script',
  'aggregator.timeout.session',
  'aggregator.timeout.queue',
  'aggregator.timeout.request',
  'aggregator.timeout.kill',
  'aggregator.pool.executor',
  'aggregator.pool.order',
  'aggregator.script.runner',
  'aggregator.script.suppliers-input',
  'aggregator.cache.ttl',
  'aggregator.cache.size',
  'aggregator.cache.redis',
  'aggregator.metrics.suppliers',
  'aggregator.fields.request',
  'aggregator.fields.items',
  'aggregator.fields.suppliers',
  'aggregator.fields.info',
  'aggregator.fields.faulty',
  'aggregator.limit.sessions',
  'aggregator.limit.tasks',
  'aggregator.limit.request-size',
  'aggregator.limit.output-size',
  'aggregator.limit.send-buffer',
  'aggregator.metrics.node',
  'aggregator.debug',
  'aggregator.demo',
];

t.test('defaults', async (t) => {
  t.same(Object.keys(DEFAULTS).sort(), [...CONFIG_KEYS].sort(), 'DEFAULTS has exactly the configuration keys');
  t.same(Object.keys(KEY_DOCS).sort(), [...CONFIG_KEYS].sort(), 'KEY_DOCS has exactly the configuration keys');
  for (const [key, doc] of Object.entries(KEY_DOCS)) {
    t.equal(doc.default, DEFAULTS[key], `${key}: documented default matches DEFAULTS`);
    t.ok(doc.meaning.length > 0, `${key}: has a meaning`);
  }
  t.equal(DEFAULTS['aggregator.limit.output-size'], '16MB');
  t.equal(DEFAULTS['server.allowed-origins'], '');

  const { config, warnings, sources } = load();
  const php = '/usr/bin/php -d display_errors=stderr';
  const expected: Config = {
    server: { port: 8000, address: '127.0.0.1', allowedOrigins: null },
    logging: { level: 'info', path: 'logs', file: 'aggregator.log', maxSizeBytes: 10 * 1024 * 1024, maxHistory: 10 },
    script: {
      suppliers: `${php} script/suppliers.php`,
      items: `${php} script/items.php`,
      echo: `${php} script/script.php`,
      runner: 'warm',
      suppliersInput: 'request',
    },
    timeout: { scriptMs: 5000, sessionMs: 30000, queueMs: 0, requestMs: 10000, killMs: 1000 },
    pool: { executor: 20, order: 'fair' },
    cache: { ttlMs: 0, sizeBytes: 64 * 1024 * 1024, redis: null },
    fields: {
      request: ['code', 'brand', 'apikey', 'analog'],
      items: 'items',
      suppliers: 'suppliers',
      info: 'info',
      faulty: ['code', 'brand', 'analog'],
    },
    limit: {
      sessions: 10000,
      tasks: 10000,
      requestSizeBytes: 64 * 1024,
      outputSizeBytes: 16 * 1024 * 1024,
      sendBufferBytes: 16 * 1024 * 1024,
    },
    metrics: { node: 'node0', suppliers: 100 },
    debug: false,
    demo: true,
  };
  t.same(config, expected, 'config matches the documented defaults');
  t.same(warnings, [], 'no warnings without a file');
  t.same(new Set(Object.values(sources)), new Set(['default']), 'every source is default');
  t.same(Object.keys(sources).sort(), [...CONFIG_KEYS].sort(), 'a source for every key');
});

t.test('properties file syntax', async (t) => {
  const dir = workdir(
    [
      '# a hash comment: server.port=1',
      '! a bang comment: server.port=2',
      '   # indented comment',
      '',
      'server.port: 9001',
      'server.address 0.0.0.0',
      'aggregator.metrics.node = node\\u0041',
      'aggregator.script.items = /usr/bin/php \\',
      '    -d display_errors=stderr items.php',
      'aggregator.script.echo=php -d x=y echo.php',
      'aggregator.fields.info=a\\:b\\=c\\ d',
      'aggregator.fields.faulty = code , , brand ,',
      '',
    ].join('\n'),
  );
  const { config, warnings, sources } = load([], {}, dir);
  t.equal(config.server.port, 9001, '":" separator');
  t.equal(config.server.address, '0.0.0.0', 'space separator');
  t.equal(config.metrics.node, 'nodeA', '\\u0041 escape');
  t.equal(config.script.items, '/usr/bin/php -d display_errors=stderr items.php', 'line continuation');
  t.equal(config.script.echo, 'php -d x=y echo.php', 'a value may hold "="');
  t.equal(config.fields.info, 'a:b=c d', 'escaped separators');
  t.same(config.fields.faulty, ['code', 'brand'], 'list entries trimmed, empty ones dropped');
  t.same(warnings, [], 'comments are not keys');
  t.equal(sources['server.port'], path.join(dir, 'application.properties'));
  t.equal(sources['server.allowed-origins'], 'default');
});

t.test('precedence: defaults < file < env < argv', async (t) => {
  const dir = workdir('aggregator.timeout.script=2\naggregator.timeout.session=3\naggregator.timeout.kill=4\n');
  const env = { AGGREGATOR_TIMEOUT_SESSION: '13', AGGREGATOR_TIMEOUT_KILL: '14' };
  const { config, sources } = load(['-Daggregator.timeout.kill=24'], env, dir);
  t.equal(config.timeout.queueMs, 0, 'default');
  t.equal(config.timeout.scriptMs, 2000, 'file over default');
  t.equal(config.timeout.sessionMs, 13000, 'env over file');
  t.equal(config.timeout.killMs, 24000, 'argv over env');
  t.equal(sources['aggregator.timeout.queue'], 'default');
  t.equal(sources['aggregator.timeout.script'], path.join(dir, 'application.properties'));
  t.equal(sources['aggregator.timeout.session'], 'env:AGGREGATOR_TIMEOUT_SESSION');
  t.equal(sources['aggregator.timeout.kill'], 'argv');

  t.equal(load(['--aggregator.pool.executor=3']).config.pool.executor, 3, '--key=value form');
  t.equal(
    load(['-Daggregator.pool.executor=3', '--aggregator.pool.executor=4']).config.pool.executor,
    4,
    'later argument wins',
  );
});

t.test('environment names', async (t) => {
  const env = {
    AGGREGATOR_LIMIT_OUTPUT_SIZE: '1MB',
    LOGGING_LEVEL_ME_BLZR_AGGREGATOR: 'debug',
    SERVER_ALLOWED_ORIGINS: 'https://a.example, https://b.example',
    PATH: '/usr/bin',
    HOME: '/root',
    AGGREGATOR_NOT_A_KEY: 'x',
  };
  const { config, warnings } = load([], env);
  t.equal(config.limit.outputSizeBytes, 1024 * 1024, 'dashes become _');
  t.equal(config.logging.level, 'debug');
  t.same(config.server.allowedOrigins, ['https://a.example', 'https://b.example']);
  t.same(warnings, [], 'unrelated variables are never warned about');
});

t.test('PORT and SERVER_PORT', async (t) => {
  t.equal(load([], { PORT: '7000' }).config.server.port, 7000, 'PORT sets server.port');
  t.equal(load([], { PORT: '7000' }).sources['server.port'], 'env:PORT');
  const both = load([], { PORT: '7000', SERVER_PORT: '7001' });
  t.equal(both.config.server.port, 7001, 'SERVER_PORT wins over PORT');
  t.equal(both.sources['server.port'], 'env:SERVER_PORT');
  t.equal(load(['-Dserver.port=0'], { PORT: '7000' }).config.server.port, 0, 'argv wins over PORT; 0 is allowed');
});

t.test('--config', async (t) => {
  const other = workdir();
  const file = path.join(other, 'custom.properties');
  fs.writeFileSync(file, 'aggregator.pool.order=fifo\n');
  const cwd = workdir('aggregator.pool.executor=5\n');

  const named = load(['--config', file], {}, cwd);
  t.equal(named.config.pool.order, 'fifo', '--config PATH is read');
  t.equal(named.config.pool.executor, 20, 'application.properties in cwd is then not read');
  t.equal(named.sources['aggregator.pool.order'], file);
  t.same(named.warnings, [], '--config is not an unknown key');

  t.equal(load([`--config=${file}`], {}, cwd).config.pool.order, 'fifo', '--config=PATH');
  t.equal(load(['--config=custom.properties'], {}, other).config.pool.order, 'fifo', 'relative to cwd');

  const missing = path.join(other, 'missing.properties');
  t.throws(() => load(['--config', missing]), { name: 'ConfigError', message: missing }, 'named missing file');
  const unreadable = workdir();
  fs.mkdirSync(path.join(unreadable, 'application.properties'));
  t.throws(() => load([], {}, unreadable), ConfigError, 'an unreadable default file is an error, not skipped');
  t.throws(() => load(['--config']), ConfigError, '--config without a path');
  t.doesNotThrow(() => load([], {}, workdir()), 'a missing default file is fine');
});

t.test('unknown keys warn', async (t) => {
  const dir = workdir('aggregator.pool.threads=3\naggregator.pool.watchdog=4\n');
  const { warnings, config } = load(['-Dserver.prot=1', '--aggregator.pool.watchdog=2'], {}, dir);
  t.equal(warnings.length, 2, 'one warning per unknown key; watchdog is silently ignored');
  t.match(warnings[0], 'aggregator.pool.threads');
  t.match(warnings[1], 'server.prot');
  t.equal(config.server.port, 8000, 'unknown keys change nothing');

  const stray = load(['--server.port', '9000']);
  t.equal(stray.config.server.port, 8000, '"--key value" is not a setting');
  t.equal(stray.warnings.length, 2, 'both stray arguments are reported');
});

t.test('bad values stop startup with key and value', async (t) => {
  const bad: [string, string][] = [
    ['aggregator.timeout.script', 'abc'],
    ['aggregator.timeout.script', '0'],
    ['aggregator.timeout.session', '-1'],
    ['aggregator.timeout.kill', ''],
    ['aggregator.timeout.queue', '-0.5'],
    ['aggregator.timeout.session', '9999999'],
    ['aggregator.pool.executor', '0'],
    ['aggregator.pool.executor', '2.5'],
    ['aggregator.pool.order', 'lifo'],
    ['aggregator.limit.output-size', '16XB'],
    ['aggregator.limit.request-size', '0KB'],
    ['server.port', '65536'],
    ['server.port', '80a'],
    ['logging.level.me.blzr.aggregator', 'VERBOSE'],
    ['logging.file.max-history', '0'],
    ['aggregator.limit.tasks', '0'],
    ['aggregator.fields.request', ' , '],
    ['aggregator.debug', 'maybe'],
    ['aggregator.script.items', '  '],
    ['aggregator.timeout.request', '0'],
    ['aggregator.timeout.request', 'soon'],
    ['aggregator.script.runner', 'fork'],
    ['aggregator.script.suppliers-input', 'both'],
    ['aggregator.cache.ttl', '-1'],
    ['aggregator.cache.size', '0'],
    ['aggregator.cache.redis', 'localhost:6379'],
    ['aggregator.cache.redis', 'http://cache:6379'],
    ['aggregator.metrics.suppliers', '0'],
    ['aggregator.metrics.suppliers', '1.5'],
  ];
  for (const [key, value] of bad) {
    const err = errorFor(key, value);
    t.ok(err, `${key}=${JSON.stringify(value)} throws a ConfigError`);
    t.match(err?.message, key, 'message names the key');
    t.match(err?.message, JSON.stringify(value), 'message names the value');
  }

  const err = t.throws(() => load([], { AGGREGATOR_TIMEOUT_SCRIPT: 'abc' })) as ConfigError;
  t.match(err.message, /^invalid value for aggregator\.timeout\.script: "abc" \(expected a number of seconds > 0/);
  t.match(err.message, 'env:AGGREGATOR_TIMEOUT_SCRIPT', 'message says where the value came from');
  t.equal(err.key, 'aggregator.timeout.script');
  t.equal(err.value, 'abc');
});

t.test('sizes', async (t) => {
  t.equal(parseSize('512'), 512);
  t.equal(parseSize('64KB'), 64 * 1024);
  t.equal(parseSize('64k'), 64 * 1024);
  t.equal(parseSize('16 MB'), 16 * 1024 ** 2);
  t.equal(parseSize('16m'), 16 * 1024 ** 2);
  t.equal(parseSize('2GB'), 2 * 1024 ** 3);
  t.equal(parseSize('1g'), 1024 ** 3);
  t.equal(parseSize('1.5kb'), 1536);
  t.throws(() => parseSize('MB'));
  t.throws(() => parseSize('1TB'));
  t.throws(() => parseSize('-1KB'));
  t.equal(load(['-Dlogging.file.max-size=1 GB']).config.logging.maxSizeBytes, 1024 ** 3, 'through loadConfig');
});

t.test('seconds, booleans, levels, lists', async (t) => {
  const { config } = load([
    '-Daggregator.timeout.script=0.3',
    '-Daggregator.timeout.queue=1.5',
    '-Daggregator.timeout.kill=.25',
    '-Daggregator.timeout.session=0.0001',
    '-Daggregator.debug=YES',
    '-Daggregator.demo=0',
    '-Dlogging.level.me.blzr.aggregator=Warn',
    '-Daggregator.pool.order=FIFO',
    '-Dserver.allowed-origins= , ',
    '-Daggregator.fields.request= code ,brand',
  ]);
  t.equal(config.timeout.scriptMs, 300, 'fractional seconds');
  t.equal(config.timeout.queueMs, 1500);
  t.equal(config.timeout.killMs, 250);
  t.equal(config.timeout.sessionMs, 1, 'a tiny positive timeout never becomes 0');
  t.equal(config.debug, true);
  t.equal(config.demo, false);
  t.equal(config.logging.level, 'warn');
  t.equal(config.pool.order, 'fifo');
  t.equal(config.server.allowedOrigins, null, 'an empty origin list means any');
  t.same(config.fields.request, ['code', 'brand']);
  t.equal(load(['-Daggregator.debug=False']).config.debug, false);
});

t.test('a script command with shell operators stops startup, naming the key', async (t) => {
  for (const line of ['php a.php | tee x', 'php a.php; rm -rf /tmp/x', 'php a.php > out']) {
    const err = errorFor('aggregator.script.items', line);
    t.ok(err, `refused: ${line}`);
    t.match(err?.message, 'aggregator.script.items');
  }
  t.equal(errorFor('aggregator.script.items', '/usr/bin/php "my dir/items.php"'), undefined, 'quotes are fine');
});

// The Config shape every module relies on, spelled out: the type inferred from the key table
// must be exactly this (a path renamed or retyped there fails the type check here).
interface ExpectedConfig {
  server: { port: number; address: string; allowedOrigins: string[] | null };
  logging: {
    level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
    path: string;
    file: string;
    maxSizeBytes: number;
    maxHistory: number;
  };
  script: {
    suppliers: string;
    items: string;
    echo: string;
    runner: 'warm' | 'spawn';
    suppliersInput: 'request' | 'params';
  };
  timeout: { scriptMs: number; sessionMs: number; queueMs: number; requestMs: number; killMs: number };
  pool: { executor: number; order: 'fair' | 'fifo' };
  cache: { ttlMs: number; sizeBytes: number; redis: string | null };
  fields: { request: string[]; items: string; suppliers: string; info: string; faulty: string[] };
  limit: { sessions: number; tasks: number; requestSizeBytes: number; outputSizeBytes: number; sendBufferBytes: number };
  metrics: { node: string; suppliers: number };
  debug: boolean;
  demo: boolean;
}
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const configShape: Equal<Config, ExpectedConfig> = true;

t.test('each key lands on its own Config path', async (t) => {
  t.ok(configShape, 'the inferred Config type is the expected shape (checked by tsc)');
  const paths = Object.values(CONFIG_PATHS);
  t.equal(new Set(paths).size, paths.length, 'no two keys share a path');
  t.same(
    paths.filter((p) => paths.some((q) => q.startsWith(`${p}.`))),
    [],
    'no path is also a branch of another',
  );
  const { config } = load();
  for (const [k, p] of Object.entries(CONFIG_PATHS)) {
    const value = p.split('.').reduce<unknown>((node, name) => (node as Record<string, unknown>)[name], config);
    t.not(value, undefined, `${k} → config.${p}`);
  }
});

t.test('the new keys: request timeout, runner, suppliers input, cache, supplier metrics', async (t) => {
  const { config, warnings } = load([
    '-Daggregator.timeout.request=0.3',
    '-Daggregator.script.runner=SPAWN',
    '-Daggregator.script.suppliers-input=params',
    '-Daggregator.cache.ttl=600',
    '-Daggregator.cache.size=1GB',
    '-Daggregator.cache.redis=redis://cache.internal:6380/2',
    '-Daggregator.metrics.suppliers=7',
  ]);
  t.same(warnings, []);
  t.equal(config.timeout.requestMs, 300);
  t.equal(config.script.runner, 'spawn');
  t.equal(config.script.suppliersInput, 'params');
  t.equal(config.cache.ttlMs, 600_000);
  t.equal(config.cache.sizeBytes, 1024 ** 3);
  t.equal(config.cache.redis, 'redis://cache.internal:6380/2');
  t.equal(config.metrics.suppliers, 7);
  t.equal(load(['-Daggregator.cache.redis=  ']).config.cache.redis, null, 'blank = no Redis');
  t.equal(load([], { AGGREGATOR_CACHE_TTL: '0' }).config.cache.ttlMs, 0, '0 = cache off');
});

t.test('aggregator.cache.redis: redis:// or rediss:// with a host, an optional port and /db', async (t) => {
  for (const url of [
    'redis://localhost',
    'redis://localhost:6379',
    'redis://localhost:6379/',
    'redis://10.0.0.5:6379/15',
    'rediss://cache.example:6380/0',
    'redis://:secret@cache:6379/1',
    'redis://[::1]:6379',
  ])
    t.ok(isRedisUrl(url), `accepted: ${url}`);
  for (const url of [
    'localhost:6379',
    'redis://',
    'redis://:6379',
    'redis://cache:99999',
    'redis://cache:port',
    'redis://cache/db1',
    'redis://cache/1/2',
    'redis://cache?db=1',
    'redis://cache#x',
    'unix:///run/redis.sock',
    'https://cache:6379',
  ])
    t.notOk(isRedisUrl(url), `refused: ${url}`);
});

t.test('the original v0.7 application.properties starts as it is, without a warning', async (t) => {
  const file = path.join(FIXTURES, 'original', 'application.properties');
  const { config, warnings, sources } = load(['--config', file]);
  t.same(warnings, [], 'logging.pattern.*, aggregator.pool.watchdog and the aliases are not warned about');
  t.equal(config.server.port, 8000);
  t.equal(config.logging.path, 'logs', 'logging.file: its folder');
  t.equal(config.logging.file, 'aggregator.log', 'logging.file: its file name');
  t.equal(config.logging.level, 'debug');
  t.equal(config.logging.maxSizeBytes, 10 * 1024 * 1024);
  t.equal(config.logging.maxHistory, 10);
  t.equal(config.fields.info, 'info');
  t.equal(config.metrics.node, 'shop-node-1', 'aggregator.prometheus.node');
  t.equal(config.script.items, '/usr/bin/php -d display_errors=stderr script/items.php');
  t.equal(config.script.suppliers, '/usr/bin/php -d display_errors=stderr script/suppliers.php');
  t.equal(config.timeout.scriptMs, 5000);
  t.equal(config.timeout.sessionMs, 30000);
  t.equal(config.pool.executor, 20);
  t.same(config.fields.request, ['code', 'brand', 'apikey', 'analog']);
  t.same(config.fields.faulty, ['code', 'brand', 'analog']);
  t.equal(config.script.suppliersInput, 'request', 'the stdin format is an explicit choice (docs/migrating.md)');
  t.equal(sources['logging.file.path'], `${file} (as logging.file)`);
  t.equal(sources['aggregator.metrics.node'], `${file} (as aggregator.prometheus.node)`);
  // How the service runs it: the unit's command line names the log folder.
  const unit = load(['--config', file, '-Dlogging.file.path=/var/log/aggregator']);
  t.equal(unit.config.logging.path, '/var/log/aggregator', 'a later source beats the alias');
  t.equal(unit.config.logging.file, 'aggregator.log');
  t.same(unit.warnings, [], 'different sources: no warning');
});

t.test('logging.file: folder and file name', async (t) => {
  const cases: [string, string, string][] = [
    ['logs/aggregator.log', 'logs', 'aggregator.log'],
    ['/var/log/shop/search.log', '/var/log/shop', 'search.log'],
    ['search.log', '.', 'search.log'],
    ['/agg.log', '/', 'agg.log'],
    [' logs/a b.log ', 'logs', 'a b.log'],
  ];
  for (const [value, folder, name] of cases) {
    const { config } = load([`-Dlogging.file=${value}`]);
    t.same([config.logging.path, config.logging.file], [folder, name], JSON.stringify(value));
  }
  t.equal(load([], { LOGGING_FILE: 'env/x.log' }).config.logging.file, 'x.log', 'from the environment too (LOGGING_FILE)');
  t.equal(load([], { AGGREGATOR_PROMETHEUS_NODE: 'n9' }).config.metrics.node, 'n9', 'AGGREGATOR_PROMETHEUS_NODE');
  for (const value of ['logs/', '', 'logs/..']) {
    const err = errorFor('logging.file', value);
    t.ok(err, `${JSON.stringify(value)} is refused`);
    t.equal(err?.key, 'logging.file', 'the error names the key that was set, not the one it stands for');
    t.match(err?.message, /^invalid value for logging\.file: .*expected a file path such as logs\/aggregator\.log; set by argv/);
  }
  t.match(errorFor('aggregator.prometheus.node', ' ')?.message, /^invalid value for aggregator\.prometheus\.node: " "/);
});

t.test('an alias and its key in one source: the key wins, with a warning', async (t) => {
  const dir = workdir('aggregator.metrics.node=current\naggregator.prometheus.node=old\nlogging.file=old/search.log\nlogging.file.path=new\n');
  const { config, warnings } = load([], {}, dir);
  t.equal(config.metrics.node, 'current', 'aggregator.metrics.node wins over a later aggregator.prometheus.node');
  t.equal(config.logging.path, 'new', 'logging.file.path wins over the folder of logging.file');
  t.equal(config.logging.file, 'search.log', 'the file name still comes from logging.file');
  t.same(warnings.sort(), [
    `aggregator.metrics.node and the original's aggregator.prometheus.node are both set in ${path.join(dir, 'application.properties')}: aggregator.metrics.node wins`,
    `logging.file.path and the original's logging.file are both set in ${path.join(dir, 'application.properties')}: logging.file.path wins`,
  ]);
  const argv = load(['-Daggregator.prometheus.node=a', '-Daggregator.metrics.node=b']);
  t.equal(argv.config.metrics.node, 'b');
  t.match(argv.warnings, [/both set in the command line: aggregator.metrics.node wins/]);
  const env = load([], { AGGREGATOR_PROMETHEUS_NODE: 'a', AGGREGATOR_METRICS_NODE: 'b' });
  t.equal(env.config.metrics.node, 'b');
  t.match(env.warnings, [/both set in the environment/]);
  const across = load(['-Daggregator.prometheus.node=argv'], { AGGREGATOR_METRICS_NODE: 'env' });
  t.equal(across.config.metrics.node, 'argv', 'across sources the later source wins, alias or not');
  t.same(across.warnings, []);
  t.same([...ALIAS_KEYS].sort(), ['aggregator.prometheus.node', 'logging.file']);
});

t.test("the original's ignored keys stay silent; near misses still warn", async (t) => {
  const { warnings } = load([
    '-Dlogging.pattern.console=%msg%n',
    '-Dlogging.pattern.file=%msg%n',
    '-Dlogging.pattern.dateformat=HH:mm',
    '-Daggregator.pool.watchdog=2',
    '-Dlogging.patterns.file=x',
    '-Dlogging.file.name=x.log',
  ]);
  t.equal(warnings.length, 2, warnings.join('; '));
  t.match(warnings[0], 'logging.patterns.file');
  t.match(warnings[1], 'logging.file.name', 'the log file name has no key of its own');
});
