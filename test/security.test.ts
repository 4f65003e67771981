// Locked-down defaults (docs/security.md lists every threat and the test that covers it):
// loopback only unless configured, no shell anywhere, secrets never logged (even when a script
// prints them on stderr) nor sent, /debug off, the Origin check on both WebSockets.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import WebSocket from 'ws';
import { parseCommand } from '../src/command.js';
import { loadConfig } from '../src/config.js';
import { runScript } from '../src/processes/runner.js';
import { FIXTURES, ROOT, demoRequest, invariantViolations, search, startServer, waitFor } from './helpers/harness.js';

// ---------------------------------------------------------------- bound to loopback

/** Local addresses (hex, as in /proc/net/tcp{,6}) listening on `port`. */
function listeners(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').slice(1) : [];
    for (const line of lines) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === '0A' && local?.endsWith(`:${hexPort}`)) out.push(local.split(':')[0] ?? '');
    }
  }
  return out;
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

t.test('the real entry point listens on 127.0.0.1 only, unless server.address says otherwise', async (t) => {
  t.equal(loadConfig({ argv: [], env: {}, cwd: os.tmpdir() }).config.server.address, '127.0.0.1', 'the default address');
  const main = path.join(ROOT, 'dist', 'main.js');
  if (!fs.existsSync(main)) return t.fail('dist/main.js is missing: npm test builds it (npm run build)');
  const port = await freePort();
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-sec-'));
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // tap's loaders
  delete env.SERVER_ADDRESS;
  // No server.address anywhere: not on the command line, not in the environment, and the
  // working directory has no application.properties.
  const child = spawn(process.execPath, [main, `-Dserver.port=${port}`, `-Dlogging.file.path=${logDir}`], {
    cwd: logDir,
    env,
    stdio: 'ignore',
  });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  t.ok(await waitFor(() => listeners(port).length > 0, 15_000), 'it listens');
  t.same(listeners(port), ['0100007F'], 'on 127.0.0.1 and nothing else (no 0.0.0.0, no IPv6)');
  const external = Object.values(os.networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal);
  if (external) {
    const err = await new Promise<string>((resolve) => {
      const c = net.connect(port, external.address, () => resolve('connected'));
      c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    t.equal(err, 'ECONNREFUSED', `not reachable on ${external.address}`);
  }
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
});

// ---------------------------------------------------------------- no shell

const SHELL_PATTERNS: [string, RegExp][] = [
  ['a shell option', /\bshell\s*:\s*(true|['"`])/],
  ['child_process exec/execSync', /import\s*\{[^}]*\bexec(Sync)?\b[^}]*\}\s*from\s*['"](node:)?child_process['"]|\bchild_process\s*\.\s*exec(Sync)?\s*\(/],
  ['execa command strings', /\bexecaCommand(Sync)?\b|import\s*\{[^}]*\$[^}]*\}\s*from\s*['"]execa['"]/],
  ['a shell program', /['"`](\/(usr\/)?bin\/)?(ba|da|z)?sh['"`]\s*,\s*\[?\s*['"`]-c/],
  ['"sh -c" in a string', /['"`][^'"`\n]*\b(ba|da|z)?sh -c\b/],
];

const withoutComments = (src: string) => src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');

function shellUses(src: string): string[] {
  const code = withoutComments(src);
  return SHELL_PATTERNS.filter(([, re]) => re.test(code)).map(([name]) => name);
}

t.test('no shell anywhere in src/ and machines/', async (t) => {
  // The detector itself must see what it is meant to see.
  const bad = [
    "spawn('sh', ['-c', line])",
    "spawn(cmd, args, { shell: true })",
    "import { exec } from 'node:child_process';",
    "import { spawn, execSync } from 'child_process';",
    "execaCommand(line)",
    "import { $ } from 'execa';",
    "const cmd = `sh -c ${line}`;",
    "execFile('/bin/bash', ['-c', line])",
  ];
  for (const sample of bad) t.ok(shellUses(sample).length > 0, `the check catches: ${sample}`);
  t.same(shellUses("const m = SIZE_RE.exec(text); spawn(file, args, { detached: true }); // sh -c in a comment"), [], 'and not regex .exec or comments');

  const files = ['src', 'machines'].flatMap((dir) =>
    fs
      .readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => path.join(dir, f)),
  );
  t.ok(files.length > 10, `${files.length} source files scanned`);
  const found = files.flatMap((f) => shellUses(fs.readFileSync(path.join(ROOT, f), 'utf8')).map((what) => `${f}: ${what}`));
  t.same(found, [], 'no shell is used anywhere');
});

t.test('a script command line never reaches a shell', async (t) => {
  for (const line of ['/bin/echo hi; touch /tmp/x', '/bin/echo hi | cat', '/bin/echo $(id)', '/bin/echo hi > /tmp/x', '/bin/echo a && b'])
    t.throws(() => parseCommand(line), `refused: ${line}`);
  const run = await runScript({
    command: parseCommand("/bin/echo $HOME '*' \"$(x)\" ~ `id`"),
    input: '{}',
    timeoutMs: 5000,
    killAfterMs: 500,
    maxOutputBytes: 1024,
  });
  t.match(run, { ok: true, stdout: '$HOME * $(x) ~ `id`\n' }, 'no expansion, no substitution, no globbing: the words reach the program as written');
});

// ---------------------------------------------------------------- secrets

t.test('secrets a script prints on stderr are cut out of the log; frames never carry them', async (t) => {
  // The suppliers fixture gives each supplier params with a login and a password; both scripts
  // echo their whole stdin on stderr, as a hurried translator might when it fails.
  const echoStdin = path.join(FIXTURES, 'misbehaving', 'stdin-to-stderr.sh');
  const srv = await startServer({
    'aggregator.script.suppliers': `${echoStdin} suppliers`,
    'aggregator.script.items': `${echoStdin} items`,
  });
  let closed = false;
  t.teardown(async () => {
    if (!closed) await srv.close();
  });
  const res = await search(srv.wsBase, demoRequest('secrets', { apikey: 'APIKEY-6f1c2e' }));
  t.same(invariantViolations(res.frames), []);
  t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' });
  t.equal(res.frames.filter((f) => f._status === 'SENDING').length, 2, 'the search worked');
  const frames = JSON.stringify(res.frames);
  for (const secret of ['APIKEY-6f1c2e', 'LOGIN-9a7b', 'PASS-"quoted"-3d4e', 'PASS-\\"quoted\\"-3d4e', '987654321'])
    t.notOk(frames.includes(secret), `no frame carries ${secret}`);

  await srv.close();
  closed = true;
  const log = fs.readFileSync(path.join(srv.logDir, 'aggregator.log'), 'utf8');
  t.ok(await waitFor(() => log.includes('"script stderr"')), 'stderr was logged');
  t.ok(log.includes('[redacted]'), 'with the secrets cut out');
  t.ok(log.includes('supplier-info-visible'), 'while the rest of it stays readable');
  for (const secret of ['APIKEY-6f1c2e', 'LOGIN-9a7b', 'PASS-', '987654321']) t.notOk(log.includes(secret), `the log never holds ${secret}`);
});

// ---------------------------------------------------------------- /debug and Origin

t.test('/debug is off by default; both WebSockets check the Origin', async (t) => {
  const open = await startServer({});
  const locked = await startServer({ 'server.allowed-origins': 'https://shop.example' });
  t.teardown(async () => {
    await open.close();
    await locked.close();
  });
  for (const p of ['/debug', '/debug/', '/debug/sessions']) t.equal((await fetch(`${open.httpBase}${p}`)).status, 404, `${p}: 404`);

  const upgrade = (base: string, p: string, origin?: string) =>
    new Promise<number>((resolve) => {
      const ws = new WebSocket(`${base}${p}`, origin ? { headers: { Origin: origin } } : {});
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('open', () => {
        resolve(101);
        ws.terminate();
      });
      ws.on('error', () => {});
    });
  for (const p of ['/ws', '/echo']) {
    t.equal(await upgrade(locked.wsBase, p, 'https://evil.example'), 403, `${p}: a foreign Origin gets 403`);
    t.equal(await upgrade(locked.wsBase, p), 403, `${p}: no Origin at all gets 403`);
    t.equal(await upgrade(locked.wsBase, p, 'https://shop.example'), 101, `${p}: the listed Origin is upgraded`);
  }
  t.equal(locked.agg.stats.sessionTotal, 1, 'a refused upgrade never opened a session');
});
