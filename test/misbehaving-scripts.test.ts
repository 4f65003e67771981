// The misbehaving-scripts catalogue (docs/reliability.md): each fixture of
// test/fixtures/misbehaving/ runs as the items script of a real server, and after each one the
// task has the catalogue's code, the aggregator still answers /health, its counters are back at
// rest, no process of the fixture is left (found by a unique marker in the environment, which
// setsid and exec keep) and memory is back near its baseline.
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { FIXTURES, demoRequest, invariantViolations, processesMatching, search, startServer, waitFor } from './helpers/harness.js';
import type { StatsJson } from '../src/stats.js';
import { heapAfterGc, killAll, processesWithEnv, rssBytes } from './helpers/procs.js';

const DIR = path.join(FIXTURES, 'misbehaving');
const ONE_SUPPLIER = `/bin/echo '{"suppliers":[{"name":"s1","info":"supplier-1"}]}'`;
const MB = 1024 * 1024;

interface Case {
  name: string;
  /** Items command line; the unique marker is appended as its last argument. */
  command: string;
  /** The ITEMS task's terminal frame. */
  status: 'SUCCESS' | 'ERROR';
  error?: string;
  overrides?: Record<string, string | number>;
  /** Extra checks on the frames and the log. */
  check?: (t: Test, r: { items: Record<string, unknown>[]; log: string }) => void;
  /** Processes the aggregator cannot track (documented): the test cleans them up. */
  untrackable?: string;
}

const sh = (file: string) => path.join(DIR, file);
// Cases that only end by the script timeout use a short one; the others get room on a busy machine.
const SHORT = { 'aggregator.timeout.script': 0.5 };

const CASES: Case[] = [
  { name: 'endless stdout', command: sh('endless-stdout.sh'), status: 'ERROR', error: 'E_SCRIPT_ERROR' },
  { name: '100 MB of stdout', command: sh('huge-stdout.sh'), status: 'ERROR', error: 'E_SCRIPT_ERROR' },
  {
    name: '10 MB of stderr, then a valid answer',
    command: sh('stderr-flood.sh'),
    status: 'SUCCESS',
    check: (t, { items, log }) => {
      t.same(
        items.map((i) => i.name),
        ['after-stderr'],
      );
      const line = log.split('\n').find((l) => l.includes('"script stderr"'));
      t.ok(line, 'stderr is logged');
      const entry = JSON.parse(line ?? '{}') as { stderr?: string; stderrBytes?: number };
      t.equal(entry.stderrBytes, 10 * MB, 'all of stderr was read (the script was not blocked)');
      t.ok((entry.stderr ?? '').length <= 64 * 1024, 'but only a bounded part of it is kept and logged');
    },
  },
  {
    name: 'PHP warnings on stdout before the JSON',
    command: `/usr/bin/php -d display_errors=1 -d error_reporting=-1 ${sh('php-warnings.php')}`,
    status: 'ERROR',
    error: 'E_ITEMS_JSON',
  },
  {
    name: 'invalid UTF-8 in the answer',
    command: sh('invalid-utf8.sh'),
    status: 'SUCCESS',
    check: (t, { items }) => {
      t.equal(items.length, 1);
      t.match(String(items[0]?.name), /^caf\uFFFD .*cut\uFFFD$/, 'bad bytes become U+FFFD');
    },
  },
  {
    name: 'stdout closed early, the script keeps running',
    command: sh('stdout-closed-early.sh'),
    status: 'ERROR',
    error: 'E_SCRIPT_TIMEOUT',
    overrides: SHORT,
  },
  {
    name: 'a grandchild holds stdout after the script exits',
    command: sh('grandchild-stdout.sh'),
    // SUCCESS (not E_SCRIPT_TIMEOUT): the task ends with the script, not with the pipe.
    status: 'SUCCESS',
    check: (t, { items }) => t.same(items.map((i) => i.name), ['from-the-parent']),
  },
  {
    name: 'SIGTERM ignored (trap)',
    command: sh('ignore-term.sh'),
    status: 'ERROR',
    error: 'E_SCRIPT_TIMEOUT',
    overrides: SHORT,
  },
  {
    name: 'a daemon started with setsid',
    command: sh('setsid-daemon.sh'),
    status: 'SUCCESS',
    check: (t, { items }) => t.same(items.map((i) => i.name), ['daemon-started']),
  },
  {
    name: 'a setsid daemon holding stdout',
    command: sh('setsid-daemon-stdout.sh'),
    status: 'SUCCESS',
    check: (t, { items }) => t.same(items.map((i) => i.name), ['daemon-holds-stdout']),
  },
  {
    name: 'a setsid daemon with an emptied environment holding stdout (untrackable)',
    command: sh('setsid-env-cleared.sh'),
    status: 'SUCCESS',
    untrackable: 'DAEMON_MARK',
    check: (t, { items }) => t.same(items.map((i) => i.name), ['untrackable-daemon']),
  },
  {
    name: 'exits before reading a 1 MB stdin',
    command: sh('no-stdin.sh'),
    status: 'SUCCESS',
    overrides: { 'aggregator.script.suppliers': sh('big-supplier.sh') },
    check: (t, { items }) => t.same(items.map((i) => i.name), ['never-read-stdin']),
  },
  {
    name: 'a fork bomb (bounded)',
    command: sh('fork-bomb.sh'),
    status: 'ERROR',
    error: 'E_SCRIPT_TIMEOUT',
    overrides: SHORT,
  },
  {
    name: 'an item nested 100,000 deep',
    command: sh('deep-nesting.sh'),
    status: 'ERROR',
    error: 'E_ITEMS_RESPONSE',
  },
];

const stats = async (base: string) => (await (await fetch(`${base}/stats`)).json()) as StatsJson;

t.test('misbehaving items scripts', async (t) => {
  // Baseline after one warm-up search, so lazily loaded code is not counted as growth.
  const warm = await startServer({ 'aggregator.script.suppliers': ONE_SUPPLIER, 'aggregator.script.items': sh('no-stdin.sh') });
  await search(warm.wsBase, demoRequest('warm-up'));
  await warm.close();
  const heap0 = heapAfterGc();
  const rss0 = rssBytes();

  for (const c of CASES) {
    await t.test(c.name, async (t) => {
      const mark = `mb-${process.pid}-${CASES.indexOf(c)}-${Date.now()}`;
      const srv = await startServer({
        'aggregator.script.suppliers': ONE_SUPPLIER,
        'aggregator.script.items': `${c.command} ${mark}`,
        'aggregator.timeout.script': 5,
        'aggregator.timeout.kill': 0.3,
        ...c.overrides,
      });
      let closed = false;
      t.teardown(async () => {
        if (!closed) await srv.close();
        killAll(processesWithEnv(`MISBEHAVING_MARK=${mark}`));
        if (c.untrackable) killAll(processesWithEnv(`${c.untrackable}=${mark}`));
      });

      const res = await search(srv.wsBase, demoRequest('misbehaving'), { timeoutMs: 20_000 });
      t.same(invariantViolations(res.frames), [], 'the frame invariants hold (docs/protocol.md, Order and invariants)');
      const items = res.frames.filter((f) => f._task === 'ITEMS' && f._status === 'SENDING');
      const end = res.frames.find((f) => f._task === 'ITEMS' && (f._status === 'SUCCESS' || f._status === 'ERROR'));
      t.equal(end?._status, c.status, 'the items task ends as catalogued');
      t.equal(end?._error, c.error, `error code ${c.error ?? '(none)'}`);
      t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' }, 'a failed items task does not fail the search');
      t.equal(res.closeCode, 1000);

      const health = await fetch(`${srv.httpBase}/health`);
      t.equal(health.status, 200, 'the aggregator is alive');
      t.ok(
        await waitFor(async () => {
          const s = await stats(srv.httpBase);
          return s.sessionAlive === 0 && s.taskPending === 0 && s.taskRunning === 0 && s.poolBusy === 0;
        }, 5000),
        'counters at rest and the pool slot freed',
      );
      const s = await stats(srv.httpBase);
      t.equal(s.taskTotal, s.taskPending + s.taskSucceeded + s.taskFailed, 'stats invariant');

      // The strays sweep runs within about a second of the script's exit.
      // (the marker is in the script's command line too, for the PHP fixture, whose putenv
      // does not show in /proc).
      const untracked = () => (c.untrackable ? processesWithEnv(`${c.untrackable}=${mark}`) : []);
      const left = () => {
        const skip = new Set(untracked());
        return [...processesWithEnv(`MISBEHAVING_MARK=${mark}`), ...processesMatching(mark)].filter((p) => !skip.has(p));
      };
      t.ok(await waitFor(() => left().length === 0, 4000), 'no process of the fixture is left');

      await srv.close();
      closed = true;
      const log = fs.readFileSync(path.join(srv.logDir, 'aggregator.log'), 'utf8');
      t.notOk(log.includes('secret-apikey'), 'the apikey is not logged');
      c.check?.(t, { items, log });

      const heapGrowth = heapAfterGc() - heap0;
      const rssGrowth = rssBytes() - rss0;
      t.ok(heapGrowth < 32 * MB, `heap back near baseline (+${(heapGrowth / MB).toFixed(1)} MB)`);
      t.ok(rssGrowth < 256 * MB, `RSS near baseline (+${(rssGrowth / MB).toFixed(1)} MB)`);
    });
  }
});
