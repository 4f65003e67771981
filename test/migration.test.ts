// Migrating from the original v0.7: its application.properties (test/fixtures/original/) starts
// this aggregator as it is, and its PHP scripts, which read the search as $in["params"]["code"],
// work end to end (real server, real WebSocket, real php) with
// aggregator.script.suppliers-input=params. Without the option the same scripts fail the
// search, and the test pins down how.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { type AnyFrame, FIXTURES, ROOT, invariantViolations, search } from './helpers/harness.js';
import { PHP, getStats, killLeftovers, leftovers, marker, statsViolations, taskViews } from './helpers/e2e.js';

const MARK = marker('migration');
const ORIGINAL = path.join(FIXTURES, 'original');
const script = (name: string) => `${PHP} -d display_errors=stderr ${path.join(ORIGINAL, name)} ${MARK}`;
// The original scripts authorise this key (the aggregator authorises nobody).
const REQUEST = { code: '3310', brand: 'ctr', apikey: 'migration-key-5150', analog: 1 };

t.teardown(() => killLeftovers(MARK));

/** The real app on port 0, configured by the original's properties file plus `-D` overrides. */
async function startOriginal(t: Test, overrides: Record<string, string>) {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-migration-'));
  const argv = [
    '--config',
    path.join(ORIGINAL, 'application.properties'),
    ...Object.entries({
      'server.port': '0',
      // As the systemd units do: the command line's folder beats logging.file's.
      'logging.file.path': logDir,
      'aggregator.script.suppliers': script('suppliers.php'),
      'aggregator.script.items': script('items.php'),
      ...overrides,
    }).map(([k, v]) => `-D${k}=${v}`),
  ];
  const { config, warnings } = loadConfig({ argv, env: {}, cwd: ROOT });
  const logs = createLogger(config, { stdout: false });
  const agg = await buildApp(config, logs.log);
  await agg.app.listen({ port: 0, host: '127.0.0.1' });
  const addr = agg.app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  // Once, from the test (to read the flushed log) or from the teardown.
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= agg.shutdown().then(() => logs.close()));
  t.teardown(async () => {
    await close();
    fs.rmSync(logDir, { recursive: true, force: true });
  });
  return { agg, config, warnings, logDir, close, wsBase: `ws://127.0.0.1:${port}`, httpBase: `http://127.0.0.1:${port}` };
}

const infoName = (f: AnyFrame) => (f._info as { name?: string } | undefined)?.name;

t.test('the original scripts with suppliers-input=params: a nested search ends SESSION SUCCESS', async (t) => {
  const srv = await startOriginal(t, { 'aggregator.script.suppliers-input': 'params' });
  t.same(srv.warnings, [], 'the original properties file starts without a warning');
  t.equal(srv.config.metrics.node, 'shop-node-1', 'its aggregator.prometheus.node is the instance label');

  const res = await search(srv.wsBase, REQUEST);
  const { frames } = res;
  t.same(invariantViolations(frames), [], 'frame order and invariants hold');
  t.equal(frames.at(-1)?._task, 'SESSION');
  t.equal(frames.at(-1)?._status, 'SUCCESS', 'SESSION SUCCESS');
  t.equal(res.closeCode, 1000);

  const views = taskViews(frames);
  const suppliers = views.filter((v) => v.kind === 'SUPPLIERS');
  t.equal(suppliers.length, 1);
  t.equal(suppliers[0]?.status, 'SUCCESS');
  // One line per ITEMS task: "[parent>]supplier status item-codes".
  const byId = new Map(views.map((v) => [v.id, v]));
  const name = (info: unknown) => (info as { name?: string } | undefined)?.name ?? '?';
  const lines = views
    .filter((v) => v.kind === 'ITEMS')
    .map((v) => {
      const parent = v.parent === undefined ? '' : `${name(byId.get(v.parent)?.info)}>`;
      return `${parent}${name(v.info)} ${v.status ?? 'OPEN'} ${v.items.map((i) => String(i.code)).join(',')}`;
    })
    .sort();
  t.same(lines, [
    'Armtek SUCCESS 3311,3302,3333',
    'Armtek>Rossko SUCCESS 3302',
    'Armtek>Rossko SUCCESS 3311',
    'Autotrade SUCCESS 3310,3310',
    'Rossko SUCCESS 3310',
  ]);
  const autotrade = frames.filter((f) => f._status === 'SENDING' && infoName(f) === 'Autotrade');
  t.same(
    autotrade.map((f) => f.name),
    ['Autotrade 3310', 'Autotrade 3310 (used)'],
    'items arrive as the script returned them, in order',
  );
  t.same(autotrade[0]?._info, { name: 'Autotrade', delivery: '1 day' }, '_info is the supplier info');
  const text = JSON.stringify(frames);
  for (const secret of ['migration-key-5150', 'at-pass-7781', 'rs-pass-9012', 'armtek-key-4d44cbtf', '"params"'])
    t.notOk(text.includes(secret), `${secret} never reaches the browser`);

  const stats = await getStats(srv.httpBase);
  t.same(statsViolations(stats), []);
  t.equal(stats.taskSucceeded, 6, 'SUPPLIERS + 5 ITEMS tasks succeeded');
  t.equal(stats.taskFailed, 0);
  t.same(await leftovers(MARK), [], 'no php process left');

  // Logged to aggregator.log (logging.file's name) in the command line's folder, without secrets.
  await srv.close();
  const log = fs.readFileSync(path.join(srv.logDir, 'aggregator.log'), 'utf8');
  t.match(log, /"msg":"session ended"/);
  for (const secret of ['migration-key-5150', 'at-pass-7781', 'armtek-key-4d44cbtf']) t.notOk(log.includes(secret), `no ${secret} in the log`);
});

t.test('the same scripts without the option: the suppliers script fails, E_SCRIPT_ERROR', async (t) => {
  const srv = await startOriginal(t, {});
  t.equal(srv.config.script.suppliersInput, 'request', 'the default');
  const res = await search(srv.wsBase, REQUEST);
  t.same(invariantViolations(res.frames), []);
  // $in["params"] is missing: PHP warns on stderr, the key check fails, exit 1.
  t.same(
    res.frames.map((f) => [f._task, f._status, f._error ?? null]),
    [
      ['SUPPLIERS', 'PENDING', null],
      ['SUPPLIERS', 'ERROR', 'E_SCRIPT_ERROR'],
      ['SESSION', 'ERROR', 'E_SCRIPT_ERROR'],
    ],
  );
  t.same(res.frames.at(-1)?._params, { code: '3310', brand: 'ctr', analog: 1 }, 'the faulty fields are echoed');
  t.equal(res.closeCode, 1000);
  t.same(statsViolations(await getStats(srv.httpBase)), []);

  // What the admin finds in the log: the script's own words on stderr, at DEBUG (the original
  // properties file sets DEBUG).
  await srv.close();
  const lines = fs
    .readFileSync(path.join(srv.logDir, 'aggregator.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg?: string; stderr?: string });
  const stderr = lines.filter((l) => l.msg === 'script stderr').map((l) => l.stderr ?? '').join('\n');
  t.match(stderr, /Undefined (array key "params"|index: params)/, 'PHP says what is missing (PHP 8 or 7 wording)');
  t.match(stderr, 'suppliers.php: unknown client key');
});
