// Logs (docs/service.md, Logs): the file, its rotation (never more than max-history + 1 files), the
// level, the child loggers, script stderr at DEBUG with the task id, and secrets redacted in every
// line.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { quote } from 'shell-quote';
import t from 'tap';
import { loadConfig } from '../src/config.js';
import { CENSOR, LOG_FILE, createLogger, scrub } from '../src/logger.js';
import { ROOT, demoRequest, invariantViolations, search, startServer } from './helpers/harness.js';

function configFor(dir: string, extra: Record<string, string> = {}) {
  const argv = Object.entries({ 'logging.file.path': dir, ...extra }).map(([k, v]) => `-D${k}=${v}`);
  return loadConfig({ argv, env: {}, cwd: ROOT }).config;
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'agg-logger-'));
const lines = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Samples the folder as fast as the event loop allows; returns the largest count seen. */
function sampleFolder(dir: string) {
  let max = 0;
  let samples = 0;
  let on = true;
  const tick = () => {
    if (!on) return;
    max = Math.max(max, fs.readdirSync(dir).length);
    samples++;
    setImmediate(tick);
  };
  tick();
  return {
    stop: () => {
      on = false;
      return { max, samples };
    },
  };
}

t.test('scrub censors params and apikey at any depth, and copies only when it must', async (t) => {
  const clean = { a: 1, b: { c: [1, { d: 2 }] } };
  t.equal(scrub(clean), clean, 'nothing to censor: same object');
  const deep = { x: { y: { z: { w: { supplier: { params: { password: 'pw' }, info: 1 } } } } }, apikey: 'k', list: [{ apikey: 'k2' }] };
  const out = scrub(deep) as typeof deep;
  t.same(out.x.y.z.w.supplier, { params: CENSOR, info: 1 });
  t.equal(out.apikey, CENSOR);
  t.same(out.list, [{ apikey: CENSOR }]);
  t.same(deep.x.y.z.w.supplier.params, { password: 'pw' }, 'the original is untouched');
});

t.test('every line of the file is redacted, bindings included; the level filters', async (t) => {
  const dir = tmp();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const logs = createLogger(configFor(dir, { 'logging.level.me.blzr.aggregator': 'WARN' }), { stdout: false });
  const child = logs.log.child({ session: '7', supplier: { params: { password: 'pw-binding' } } });
  child.warn({ request: { apikey: 'key-1', code: 'c' } }, 'a');
  child.warn({ a: { b: { c: { d: { params: { password: 'pw-deep' } } } } } }, 'b');
  child.warn({ list: [{ apikey: 'key-2' }] }, 'c');
  child.info({ visible: 'no' }, 'below the level');
  child.debug('below the level too');
  await logs.close();
  const text = fs.readFileSync(path.join(dir, LOG_FILE), 'utf8');
  for (const secret of ['pw-binding', 'pw-deep', 'key-1', 'key-2', 'password']) t.notOk(text.includes(secret), `no ${secret}`);
  const got = lines(path.join(dir, LOG_FILE));
  t.same(
    got.map((l) => l.msg),
    ['a', 'b', 'c'],
    'only WARN and above',
  );
  t.equal(got[0]?.session, '7', 'child binding kept');
  t.same((got[0]?.request as Record<string, unknown>).code, 'c', 'the rest of the object kept');
});

t.test("the original's logging.file names the folder and the file, rotated copies included", async (t) => {
  const dir = tmp();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { config } = loadConfig({
    argv: [`-Dlogging.file=${dir}/shop/search.log`, '-Dlogging.file.max-size=1KB', '-Dlogging.file.max-history=2'],
    env: {},
    cwd: ROOT,
  });
  const logs = createLogger(config, { stdout: false });
  for (let i = 0; i < 40; i++) {
    logs.log.info({ i, pad: 'x'.repeat(60) }, 'line');
    await new Promise((r) => setImmediate(r));
  }
  await logs.close();
  const files = fs.readdirSync(path.join(dir, 'shop')).sort();
  t.same(files, ['search.log', 'search.log.1', 'search.log.2'], 'the named file and its rotated copies, nothing else');
  // The last line is in the live file, or in .1 when it was the one that triggered a rotation.
  const last = lines(path.join(dir, 'shop', 'search.log')).at(-1) ?? lines(path.join(dir, 'shop', 'search.log.1')).at(-1);
  t.equal(last?.i, 39, 'the lines went to the named file');
});

/** A stream that keeps what is written to it. */
function capture() {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

t.test('stdout: JSON lines unless pretty; pretty lines are redacted too, the file stays JSON', async (t) => {
  const dir = tmp();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const json = capture();
  const a = createLogger(configFor(dir), { out: json.stream });
  a.log.info({ request: { code: 'c1', apikey: 'key-json' } }, 'plain line');
  await a.close();
  const parsed = json.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(parsed[0]?.msg, 'plain line', 'a stream that is not a terminal gets JSON lines');

  const pretty = capture();
  const b = createLogger(configFor(dir), { out: pretty.stream, pretty: true });
  b.log.warn({ request: { code: 'c2', apikey: 'key-pretty' }, supplier: { params: { password: 'pw-pretty' } } }, 'readable line');
  await b.close();
  const text = pretty.text();
  t.match(text, /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: readable line \{.*"code":"c2"/, 'time, level, message, fields on one line');
  t.notOk(text.trimStart().startsWith('{'), 'not JSON');
  t.notMatch(text, /\u001b\[/, 'no colours unless the terminal has them');
  for (const secret of ['key-pretty', 'pw-pretty']) t.notOk(text.includes(secret), `no ${secret}`);
  const file = lines(path.join(dir, LOG_FILE));
  t.same(
    file.map((l) => l.msg),
    ['plain line', 'readable line'],
    'the file holds JSON lines either way',
  );
});

t.test('on a terminal (a real pty): readable lines, the file JSON, Ctrl-C stops the server', async (t) => {
  const dir = tmp();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const main = path.join(ROOT, 'dist', 'main.js');
  const command = quote([process.execPath, main, '-Dserver.port=0', `-Dlogging.file.path=${dir}`]);
  // util-linux script(1) runs the command on a pseudo-terminal and copies what it shows to us.
  // Through $SHELL -c: `exec` makes the server the terminal's foreground process, as when a user
  // types the command; without it dash stays in between and dies of the Ctrl-C itself (130).
  const child = spawn('script', ['-qfec', `exec ${command}`, '/dev/null'], {
    cwd: ROOT,
    env: { ...process.env, AGGREGATOR_DEMO_DELAY_MS: '0', TERM: 'dumb' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let screen = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      screen += d.toString();
      const m = /aggregator listening .*"address":"(http:\/\/[^"]+)"/.exec(screen);
      if (m?.[1]) resolve(m[1]);
    });
    void exited.then(() => reject(new Error(`exited before listening: ${screen}`)));
  });
  const base = await listening;
  const res = await search(base.replace('http', 'ws'), demoRequest('normal', { apikey: 'tty-secret-key' }));
  t.equal(res.frames.at(-1)?._status, 'SUCCESS', 'a search runs');
  const ended = () => /session ended/.test(screen);
  while (!ended() && child.exitCode === null) await Promise.race([new Promise((r) => child.stdout.once('data', r)), exited]);
  child.stdin.write('\u0003'); // Ctrl-C on the terminal: SIGINT to the server
  t.equal(await exited, 0, 'stopped cleanly', { screen });
  t.match(screen, /\] INFO: aggregator listening \{/, 'readable, not JSON');
  t.match(screen, /\] INFO: stopped/, 'up to its last line');
  t.notOk(screen.includes('tty-secret-key'), 'no apikey on the terminal');
  t.notMatch(screen, /^\{"level"/m, 'no JSON line on the terminal');
  const file = lines(path.join(dir, LOG_FILE));
  t.ok(file.some((l) => l.msg === 'session ended'), 'the file has the same lines as JSON');
  t.ok(file.some((l) => l.msg === 'shutting down' && l.signal === 'SIGINT'));
});

t.test('rotation at max-size keeps max-history files, never more than max-history + 1 in the folder', async (t) => {
  const dir = tmp();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const history = 3;
  const logs = createLogger(
    configFor(dir, { 'logging.file.max-size': '1KB', 'logging.file.max-history': String(history), 'logging.level.me.blzr.aggregator': 'DEBUG' }),
    { stdout: false },
  );
  const sampler = sampleFolder(dir);
  // Bursts with pauses, so the sampler runs between the file stream's async renames.
  let n = 0;
  for (let burst = 0; burst < 60; burst++) {
    for (let i = 0; i < 10; i++) logs.log.info({ n: n++, pad: 'x'.repeat(60) }, 'line');
    await new Promise((r) => setTimeout(r, 2));
  }
  await logs.close();
  const { max, samples } = sampler.stop();
  t.ok(samples > 100, `the folder was sampled (${samples} times)`);
  t.ok(max <= history + 1, `at most ${history + 1} files at any sample (max seen ${max})`);
  const files = fs.readdirSync(dir).sort();
  t.same(files, [LOG_FILE, `${LOG_FILE}.1`, `${LOG_FILE}.2`, `${LOG_FILE}.3`], 'the live file and 3 rotated ones');
  for (const f of files.slice(1)) {
    const size = fs.statSync(path.join(dir, f)).size;
    t.ok(size >= 1024 && size < 1024 + 200, `${f} rotated at 1 KB (${size} bytes)`);
  }
  // Newest last: .3 < .2 < .1 < live, and the very last line is in the live file.
  const first = (f: string) => Number(lines(path.join(dir, f))[0]?.n);
  t.ok(first(`${LOG_FILE}.3`) < first(`${LOG_FILE}.2`) && first(`${LOG_FILE}.2`) < first(`${LOG_FILE}.1`), 'numbered newest first');
  // The last line is in the live file, or in .1 when it was the one that triggered a rotation.
  const last = lines(path.join(dir, LOG_FILE)).at(-1) ?? lines(path.join(dir, `${LOG_FILE}.1`)).at(-1);
  t.equal(last?.n, n - 1, 'nothing lost at the end');
});

t.test('under search load with 1 KB files: rotation bound holds, logs carry ids, secrets never appear', async (t) => {
  const history = 4;
  const srv = await startServer({
    'logging.file.max-size': '1KB',
    'logging.file.max-history': history,
    'logging.level.me.blzr.aggregator': 'DEBUG',
    'aggregator.timeout.script': 1,
  });
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= srv.close());
  t.teardown(async () => {
    await close();
    fs.rmSync(srv.logDir, { recursive: true, force: true });
  });
  const sampler = sampleFolder(srv.logDir);
  const results = await Promise.all(['normal', 'analog', 'mixed', 'itemsError', 'normal', 'analog'].map((code) => search(srv.wsBase, demoRequest(code))));
  for (const res of results) t.same(invariantViolations(res.frames), []);
  await close(); // the file stream writes asynchronously: flush it while still sampling
  const { max } = sampler.stop();
  t.ok(max <= history + 1, `at most ${history + 1} files while searching (max seen ${max})`);
  t.equal(fs.readdirSync(srv.logDir).length, history + 1, 'the folder is full: it did rotate');
});

t.test('a full log of searches with secrets: no apikey, no password, no params content; ids present', async (t) => {
  const srv = await startServer({ 'logging.level.me.blzr.aggregator': 'DEBUG', 'aggregator.timeout.script': 1 });
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= srv.close());
  t.teardown(async () => {
    await close();
    fs.rmSync(srv.logDir, { recursive: true, force: true });
  });
  const apikey = 'secret-apikey-9f3a1c';
  const results = await Promise.all(
    ['normal', 'analog', 'mixed', 'itemsError'].map((code) => search(srv.wsBase, demoRequest(code, { apikey }))),
  );
  for (const res of results) t.same(invariantViolations(res.frames), []);
  await close();
  const text = fs.readFileSync(path.join(srv.logDir, LOG_FILE), 'utf8');
  t.notOk(text.includes(apikey), 'the request apikey never appears');
  t.notOk(/secret-/.test(text), 'no supplier password (the demo passwords are secret-<class>)');
  t.notOk(/"params":\s*[{[]/.test(text), 'no params object');
  t.notOk(text.includes('"password"'), 'no password field');
  const all = lines(path.join(srv.logDir, LOG_FILE));
  const stderr = all.filter((l) => l.msg === 'script stderr');
  t.ok(stderr.length >= 1, 'script stderr is logged (error-3 of mixed writes to stderr)');
  t.ok(
    stderr.every((l) => l.level === 20 && typeof l.task === 'number' && typeof l.session === 'string' && typeof l.pid === 'number'),
    'at DEBUG, with the task id, session and pid',
  );
  t.ok(all.some((l) => l.msg === 'session ended' && typeof l.session === 'string'), 'session child logger');
  t.ok(all.some((l) => l.msg === 'script done' && typeof l.task === 'number'), 'task child logger');
});
