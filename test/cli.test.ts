// The built server as an admin starts it (`node dist/main.js`), docs/configuration.md: where
// configuration comes from (application.properties in the working directory, --config, SERVER_PORT
// / PORT and AGGREGATOR_* in the environment, -D / -- on the command line) and which one wins; bad
// values stop startup naming the key and the value; unknown keys warn. Plus one search through the
// real process and its shutdown (docs/protocol.md, Timeouts and how a search ends).
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ROOT, demoRequest, freePort, invariantViolations, search, waitFor } from './helpers/harness.js';
import { demoScript, killLeftovers, leftovers, marker } from './helpers/e2e.js';

const MAIN = path.join(ROOT, 'dist', 'main.js');
const MARK = marker('cli');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-cli-'));

interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}
const procs: Proc[] = [];

t.teardown(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) killGroup(p.child, 'SIGTERM');
  const all = Promise.all(procs.map((p) => p.exited));
  const late = setTimeout(() => procs.forEach((p) => killGroup(p.child, 'SIGKILL')), 4000);
  await all;
  clearTimeout(late);
  killLeftovers(MARK);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Signals the server's whole process group (it and anything it started). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}


function workdir(files: Record<string, string> = {}): string {
  const dir = fs.mkdtempSync(path.join(tmp, 'cwd-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

/** Runs dist/main.js in `cwd` with exactly `env` (plus PATH/HOME) and `args`. */
function run(args: string[], cwd: string, env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd,
    // A clean environment: no NODE_OPTIONS from tap, no SERVER_PORT or AGGREGATOR_* of ours.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', AGGREGATOR_DEMO_DELAY_MS: '20', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own group, so teardown reaches the helpers it starts too
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  // 'exit' can come before the last output; 'close' (pipes drained) is waited for, but not for
  // long, in case a helper process of the server still holds a pipe.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      const result = { code, signal };
      void Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]).then(() => resolve(result));
    }),
  );
  const proc = { child, output: () => out, exited };
  procs.push(proc);
  return proc;
}

async function statsAt(port: number): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/stats`);
    return res.ok ? ((await res.json()) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Waits until the server answers /stats on `port` (or exits); returns the stats. */
async function ready(proc: Proc, port: number): Promise<Record<string, unknown> | undefined> {
  let stats: Record<string, unknown> | undefined;
  await waitFor(async () => (stats = await statsAt(port)) !== undefined || proc.child.exitCode !== null, 10000, 50);
  return stats;
}

async function stop(proc: Proc): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  proc.child.kill('SIGTERM');
  return proc.exited;
}

if (!fs.existsSync(MAIN)) {
  t.plan(0, 'dist/main.js is missing: run "npm run build" first (npm test does)');
} else {
  // Each start costs a node boot; the four cases are independent, so they run side by side.
  t.jobs = 4;
  t.test('precedence: command line > environment > application.properties > defaults', async (t) => {
    const [filePort, envPort] = await Promise.all([freePort(), freePort()]);
    const cwd = workdir({
      'application.properties': [
        '# read from the working directory',
        `server.port = ${filePort}`,
        'aggregator.pool.executor: 3',
        'aggregator.timeout.session 12',
        'aggregator.demo=false',
        'logging.file.path=file-logs',
      ].join('\n'),
    });
    fs.mkdirSync(path.join(cwd, 'script'));
    for (const f of ['lib.php', 'suppliers.php', 'items.php']) fs.copyFileSync(path.join(ROOT, 'script', f), path.join(cwd, 'script', f));
    const proc = run(['-Daggregator.pool.executor=7'], cwd, { SERVER_PORT: String(envPort), AGGREGATOR_POOL_EXECUTOR: '5' });
    const stats = await ready(proc, envPort);
    t.ok(stats, `listens on the SERVER_PORT from the environment (${envPort}), not the file's`);
    // The default script command lines are relative: they run the copy in the working directory.
    const search1 = await search(`ws://127.0.0.1:${envPort}`, demoRequest('normal'), { timeoutMs: 8000 });
    t.equal(search1.frames.filter((f) => f._status === 'SENDING').length, 9, 'default scripts, relative to the working directory');
    t.match(search1.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' });
    t.equal(stats?.poolSize, 7, 'the command line beats the environment (5) and the file (3)');
    t.equal((await fetch(`http://127.0.0.1:${envPort}/`)).status, 404, 'the file turned the demo page off (default on)');
    t.equal(await statsAt(filePort), undefined, "nothing on the file's port");
    // server.address defaults to 127.0.0.1: not reachable on this machine's other addresses.
    const other = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal);
    if (other) {
      const reached = await fetch(`http://${other.address}:${envPort}/stats`, { signal: AbortSignal.timeout(1000) }).then(
        () => true,
        () => false,
      );
      t.notOk(reached, `not listening on ${other.address}`);
    }
    t.ok(fs.existsSync(path.join(cwd, 'file-logs', 'aggregator.log')), 'logging.file.path from the file, relative to the working directory');
    const exit = await stop(proc);
    t.same(exit, { code: 0, signal: null }, 'SIGTERM: exit 0');
  });

  t.test('--config FILE replaces application.properties', async (t) => {
    const port = await freePort();
    const cwd = workdir({
      'application.properties': 'aggregator.pool.executor=3\n',
      // ":" and whitespace separate keys from values too, "!" starts a comment, "\" continues a line.
      'other.properties': `! another file\nserver.port ${port}\naggregator.pool.executor: \\\n  2\nlogging.file.path=${path.join(tmp, 'logs-config')}\n`,
    });
    const proc = run(['--config', 'other.properties'], cwd);
    const stats = await ready(proc, port);
    t.ok(stats, "listens on the --config file's port");
    t.equal(stats?.poolSize, 2, 'the --config file is read, application.properties is not');
    t.equal((await stop(proc)).code, 0);
  });

  t.test('PORT, --key=value, an unknown key; a search through the process; shutdown mid-search', async (t) => {
    const port = await freePort();
    const cwd = workdir({ 'application.properties': 'aggregator.unknown-file-key=1\n' });
    const proc = run(
      [
        '--aggregator.pool.executor=4',
        '-Dfoo.bar=1',
        '-Daggregator.pool.watchdog=5', // the Java original's key: accepted, ignored, no warning
        `-Dlogging.file.path=${path.join(tmp, 'logs-port')}`,
        // Absolute paths: the working directory is not the project.
        `-Daggregator.script.suppliers=${demoScript('suppliers', MARK).replace('script/', `${ROOT}/script/`)}`,
        `-Daggregator.script.items=${demoScript('items', MARK).replace('script/', `${ROOT}/script/`)}`,
        '-Daggregator.timeout.script=20',
      ],
      cwd,
      { PORT: String(port) },
    );
    const stats = await ready(proc, port);
    t.ok(stats, `PORT sets the port (${port})`);
    t.equal(stats?.poolSize, 4, '--key=value works like -Dkey=value');
    t.match(proc.output(), /foo\.bar/, 'the unknown command-line key is warned about');
    t.match(proc.output(), /aggregator\.unknown-file-key/, 'the unknown file key is warned about');
    t.notMatch(proc.output(), /watchdog/, 'aggregator.pool.watchdog is accepted silently');

    const wsBase = `ws://127.0.0.1:${port}`;
    const normal = await search(wsBase, demoRequest('normal'), { timeoutMs: 8000 });
    t.same(invariantViolations(normal.frames), []);
    t.equal(normal.frames.filter((f) => f._status === 'SENDING').length, 9, 'a search works');
    t.equal(normal.closeCode, 1000);

    // SIGTERM while three items scripts hang: they end with E_SERVER_SHUTDOWN, then close 1001.
    let sent = false;
    const hanging = await search(wsBase, demoRequest('itemsTimeout'), {
      timeoutMs: 8000,
      onFrame: (f) => {
        if (sent || f._task !== 'SUPPLIERS' || f._status !== 'SUCCESS') return;
        sent = true;
        setTimeout(() => proc.child.kill('SIGTERM'), 200); // the three scripts are running by then
      },
    });
    t.same(invariantViolations(hanging.frames), []);
    t.match(hanging.frames.at(-1), { _task: 'SESSION', _status: 'ERROR', _error: 'E_SERVER_SHUTDOWN' });
    t.equal(
      hanging.frames.filter((f) => f._task === 'ITEMS' && f._status === 'ERROR' && f._error === 'E_SERVER_SHUTDOWN').length,
      3,
      'the running scripts end with E_SERVER_SHUTDOWN',
    );
    t.equal(hanging.closeCode, 1001);
    t.same(await proc.exited, { code: 0, signal: null }, 'exit 0');
    t.same(await leftovers(MARK), [], 'no script outlives the server');
  });

  t.test('a bad value stops startup with a message naming the key and the value', async (t) => {
    const cases: [string, string[], Record<string, string>, Record<string, string>, string, string][] = [
      ['command line', ['-Daggregator.timeout.script=abc'], {}, {}, 'aggregator.timeout.script', 'abc'],
      ['pool of 0', ['-Daggregator.pool.executor=0'], {}, {}, 'aggregator.pool.executor', '0'],
      ['environment', [], { AGGREGATOR_TIMEOUT_SESSION: 'soon' }, {}, 'aggregator.timeout.session', 'soon'],
      ['file', [], {}, { 'application.properties': 'aggregator.limit.output-size=lots\n' }, 'aggregator.limit.output-size', 'lots'],
    ];
    await Promise.all(
      cases.map(async ([name, args, env, files, key, value]) => {
        const proc = run([...args, `-Dlogging.file.path=${path.join(tmp, 'logs-bad')}`], workdir(files), env);
        const exit = await proc.exited;
        t.not(exit.code, 0, `${name}: exits non-zero`);
        t.equal(exit.signal, null, `${name}: exits by itself`);
        t.ok(proc.output().includes(key) && proc.output().includes(value), `${name}: the message names ${key} and ${value}: ${proc.output().trim()}`);
      }),
    );
  });
}
