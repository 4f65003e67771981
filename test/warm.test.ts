// The warm starter on its own, with real PHP: what a started script is (its own session and
// group, stdio, exit status, signals), the warm parent's death (running tasks lost, nothing left,
// a new parent next time), bounded restarts, the run tag in /proc, the launcher's death, and the
// runner's supervision on top of it. Every process here carries WARM_TEST_MARK in its
// environment (the parents too: they start with a task's environment), so the test finds its
// own processes in /proc without counting anyone else's PHP.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { type Command, parseCommand } from '../src/command.js';
import { runScript } from '../src/processes/runner.js';
import { spawnStarter } from '../src/processes/spawn.js';
import type { StartedScript } from '../src/processes/starter.js';
import { WarmStarter, warmEligibility } from '../src/processes/warm.js';
import { FIXTURES, ROOT } from './helpers/harness.js';
import { processesWithEnv } from './helpers/procs.js';

const DIR = path.join(FIXTURES, 'warm');
const MARK = `WARM_TEST_MARK=${process.pid}-${Date.now()}`;
const [MARK_NAME, MARK_VALUE] = MARK.split('=') as [string, string];
const OWNER = `${process.pid}.1@warm-test`;
let runSeq = 0;
/** A task's environment: the marker, and a run tag as the runner would add it. */
const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  [MARK_NAME]: MARK_VALUE,
  AGGREGATOR_RUN: `${OWNER}:${process.pid}.${++runSeq}`,
  ...extra,
});
const php = (script: string, ...args: string[]): Command => parseCommand([`/usr/bin/php -d display_errors=stderr`, path.join(DIR, script), ...args].join(' '));

/** Polls /proc until `done` holds (an event: what is polled for is the state, not a delay). */
async function until(what: string, done: () => boolean): Promise<void> {
  const limit = Date.now() + 60_000; // a failing test ends, a passing one never waits this long
  while (!done()) {
    if (Date.now() > limit) throw new Error(`still waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const mine = () => processesWithEnv(MARK);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !/^\S+ \(.*\) Z/.test(readStat(pid));
  } catch {
    return false;
  }
};
const ppidOf = (pid: number) => Number(readStat(pid).slice(readStat(pid).lastIndexOf(')') + 2).split(' ')[1]);
function readStat(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return '';
  }
}

function text(s: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    s.setEncoding?.('utf8');
    s.on('data', (c: string) => (out += c));
    s.on('close', () => resolve(out));
  });
}
function firstLine(s: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const on = (c: Buffer) => {
      out += c.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        s.off('data', on);
        resolve(out.slice(0, nl));
      }
    };
    s.on('data', on);
  });
}

async function started(warm: WarmStarter, command: Command, e = env()): Promise<StartedScript> {
  const res = await warm.start(command, e);
  if (!res.ok) throw new Error(res.reason);
  res.script.stdin.on('error', () => {});
  return res.script;
}

const warm = new WarmStarter();

t.test('which commands run warm, and why', async (t) => {
  const ok = warmEligibility(parseCommand('/usr/bin/php -d display_errors=stderr script/items.php'));
  t.ok(ok.ok);
  t.match(ok, { reason: 'warm: /usr/bin/php with -d display_errors=stderr' });
  t.match(warmEligibility(parseCommand('/bin/sh -c true')), { ok: false, reason: /^spawn: program is \/(usr\/)?bin\/(da|ba)?sh, not PHP$/ });
  t.same(warmEligibility(parseCommand('/usr/bin/php -n script/items.php')), { ok: false, reason: 'spawn: option -n is not supported by warm (only -d key=value)' });
  t.same(warmEligibility(parseCommand('/usr/bin/php -d auto_prepend_file=x.php script/items.php')), { ok: false, reason: 'spawn: -d auto_prepend_file is not supported by warm' });
  t.same(warmEligibility(parseCommand('/usr/bin/php -d display_errors=stderr')), { ok: false, reason: 'spawn: no script path' });
  t.same(warmEligibility(parseCommand('/no/such/php x.php')), { ok: false, reason: 'spawn: program /no/such/php not found' });
  // A PHP whose FFI is switched off cannot run warm; the probe says so.
  t.match(warmEligibility(parseCommand('/usr/bin/php -d ffi.enable=0 script/items.php')), { ok: false, reason: /^spawn: FFI is not usable/ });
  // A PHP that is not: spawn, the warm starter hands it to its fallback or refuses it.
  t.match(await warm.start(parseCommand('/bin/true'), env()), { ok: false, reason: /not PHP/ });
  const withFallback = new WarmStarter({ fallback: spawnStarter });
  const res = await withFallback.start(parseCommand('/bin/true'), env());
  t.ok(res.ok, 'the fallback starts it');
  if (res.ok) t.same(await res.script.exited, { code: 0, signal: null });
  await withFallback.close();
});

t.test('a started script leads its own session and process group', async (t) => {
  const s = await started(warm, php('sleeper.php'));
  s.stdin.end('\n');
  const seen = JSON.parse(await firstLine(s.stdout)) as { pid: number; pgrp: number; session: number; ppid: number };
  t.equal(seen.pid, s.pid, 'the pid start() returned is the script process');
  t.equal(seen.pgrp, s.pid, 'group leader');
  t.equal(seen.session, s.pid, 'session leader');
  t.equal(seen.ppid, warm.parents()[0]?.pid, 'its parent is the warm parent');
  process.kill(-s.pid, 'SIGTERM');
  t.same(await s.exited, { code: null, signal: 'SIGTERM' }, 'SIGTERM to -pid');
});

t.test('SIGKILL to the group', async (t) => {
  const s = await started(warm, php('sleeper.php'));
  s.stdin.end('\n');
  await firstLine(s.stdout);
  process.kill(-s.pid, 'SIGKILL');
  t.same(await s.exited, { code: null, signal: 'SIGKILL' });
});

t.test('stdin, stdout, stderr and exit codes', async (t) => {
  for (const code of [0, 7, 255]) {
    const s = await started(warm, php('cat.php', String(code)));
    const out = text(s.stdout);
    const err = text(s.stderr);
    s.stdin.end('hello\nworld');
    t.same(await s.exited, { code, signal: null }, `exit ${code}`);
    t.equal(await out, 'hello\nworld');
    t.equal(await err, 'read 11 bytes\n');
  }
});

t.test('stdout ends when the script and its group have closed it', async (t) => {
  const s = await started(warm, php('grandchild.php'));
  s.stdin.end('\n');
  let ended = false;
  const out = text(s.stdout).then((o) => ((ended = true), o));
  t.same(await s.exited, { code: 0, signal: null });
  t.notOk(ended, 'the grandchild still holds stdout after the script exited');
  process.kill(-s.pid, 'SIGKILL'); // what the runner does once the leader is gone
  t.equal(await out, 'parent done\n');
});

t.test('the run tag is in /proc/PID/environ, for the child and what it forks', async (t) => {
  const e = env({ AGG_EXTRA: 'x' });
  const s = await started(warm, php('environ.php'), e);
  s.stdin.end('\n');
  const seen = JSON.parse(await text(s.stdout)) as { environ: string[]; cmdline: string[]; getenv: Record<string, string> };
  await s.exited;
  const expected = Object.entries(e).map(([k, v]) => `${k}=${String(v)}`);
  t.same(seen.environ, expected, '/proc/self/environ is the task environment, in order');
  t.same(seen.getenv, Object.fromEntries(Object.entries(e)), 'getenv() too');
  t.same(seen.cmdline, ['/usr/bin/php', '-d', 'display_errors=stderr', path.join(DIR, 'environ.php')], '/proc/self/cmdline the command');

  const d = await started(warm, php('daemon.php'), e);
  d.stdin.end('\n');
  const { daemon } = JSON.parse(await firstLine(d.stdout)) as { daemon: number };
  await d.exited;
  const environ = fs.readFileSync(`/proc/${daemon}/environ`, 'latin1').split('\0');
  t.ok(environ.includes(`AGGREGATOR_RUN=${String(e.AGGREGATOR_RUN)}`), 'a pcntl_fork + setsid daemon carries the task tag');
  process.kill(daemon, 'SIGKILL');

  const parentPid = warm.parents()[0]?.pid as number;
  const parentTag = fs.readFileSync(`/proc/${parentPid}/environ`, 'latin1').split('\0').find((x) => x.startsWith('AGGREGATOR_RUN='));
  t.match(parentTag, new RegExp(`^AGGREGATOR_RUN=${OWNER.replace(/\./g, '\\.')}:-warm-`), 'the parent: the owner, a run id that is never live');
});

t.test('the warm parent dies: running tasks are lost, nothing is left, the next start works', async (t) => {
  const before = warm.parents()[0]?.pid;
  t.ok(before, 'a parent runs');
  const tasks = await Promise.all([1, 2, 3].map(() => started(warm, php('sleeper.php'))));
  for (const s of tasks) s.stdin.end('\n');
  await Promise.all(tasks.map((s) => firstLine(s.stdout)));
  const restarts = warm.restarts;
  process.kill(before as number, 'SIGKILL');
  for (const s of tasks) t.match(await s.exited, { code: null, signal: null, lost: /warm parent \d+ died/ });
  await until('the lost tasks are gone', () => tasks.every((s) => !alive(s.pid)));
  const next = await started(warm, php('cat.php', '3'));
  next.stdin.end('again');
  t.same(await next.exited, { code: 3, signal: null }, 'a new parent runs the next task');
  t.not(warm.parents()[0]?.pid, before, 'another parent');
  t.equal(warm.restarts, restarts + 1, 'counted as a restart');
});

t.test('restarts are bounded', async (t) => {
  const limited = new WarmStarter({ maxStarts: 2, startWindowMs: 3_600_000 });
  for (let i = 0; i < 2; i++) {
    const s = await started(limited, php('sleeper.php'));
    s.stdin.end('\n');
    await firstLine(s.stdout);
    process.kill(limited.parents()[0]?.pid as number, 'SIGKILL');
    t.match(await s.exited, { lost: /died/ });
  }
  const refused = await limited.start(php('cat.php'), env());
  t.match(refused, { ok: false, reason: /started 2 times in 3600 s/ }, 'no third parent within the window');
  t.equal(limited.restarts, 1);
  await limited.close();
});

t.test('first tasks at once share one parent', async (t) => {
  const fresh = new WarmStarter();
  const all = await Promise.all(Array.from({ length: 10 }, () => started(fresh, php('cat.php'))));
  for (const s of all) s.stdin.end('x');
  await Promise.all(all.map((s) => s.exited));
  t.equal(fresh.parents().length, 1, 'one parent for one program + options');
  await fresh.close();
});

t.test('many scripts at once', async (t) => {
  const runs = await Promise.all(
    Array.from({ length: 60 }, async (_, i) => {
      const s = await started(warm, php('cat.php', String(i % 3)));
      const out = text(s.stdout);
      s.stdin.end(`task ${i}`);
      return { i, status: await s.exited, out: await out };
    }),
  );
  for (const r of runs) {
    t.same(r.status, { code: r.i % 3, signal: null });
    t.equal(r.out, `task ${r.i}`);
  }
});

t.test("the runner's rules hold for warm scripts", async (t) => {
  const base = { input: '{}', killAfterMs: 200, maxOutputBytes: 1 << 20, env: { [MARK_NAME]: MARK_VALUE } };
  const how = { starter: warm };
  const timeout = await runScript({ ...base, command: php('sleeper.php'), timeoutMs: 300 }, how);
  t.match(timeout, { ok: false, code: 'E_SCRIPT_TIMEOUT' });
  const big = await runScript({ ...base, command: php('big.php', '3'), timeoutMs: 30_000 }, how);
  t.match(big, { ok: false, code: 'E_SCRIPT_ERROR', reason: /stdout over/ });
  const fine = await runScript({ ...base, command: php('cat.php'), timeoutMs: 30_000 }, how);
  t.match(fine, { ok: true });
  if (fine.ok) t.equal(fine.stdout.toString(), '{}\n');
  const grand = await runScript({ ...base, command: php('grandchild.php'), timeoutMs: 30_000 }, how);
  t.match(grand, { ok: true }, 'done when the script exits, its group killed');
  // The parent dies under a running script: E_SCRIPT_ERROR, not a hang.
  const running = runScript(
    {
      ...base,
      command: php('sleeper.php'),
      timeoutMs: 30_000,
      onSpawn: (pid) => process.kill(ppidOf(pid), 'SIGKILL'),
    },
    how,
  );
  t.match(await running, { ok: false, code: 'E_SCRIPT_ERROR', reason: /warm parent \d+ died/ });
});

t.test('the launcher dies: its warm parent kills its scripts and exits', async (t) => {
  const host = spawn(process.execPath, ['--import', path.join(ROOT, 'node_modules/@tapjs/typescript/dist/esm/import.mjs'), path.join(DIR, 'host.ts')], {
    env: { ...process.env, [MARK_NAME]: MARK_VALUE, AGGREGATOR_RUN: `${OWNER}:host.1` },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const pids = JSON.parse(await firstLine(host.stdout)) as { parent: number; script: number };
  t.ok(alive(pids.parent) && alive(pids.script), 'both run');
  host.kill('SIGKILL');
  await until('warm parent and script gone', () => !alive(pids.parent) && !alive(pids.script));
  t.pass('gone');
});

t.test('stepped kill, bounded stderr, strays, random state', async (t) => {
  const base = { input: '{}', killAfterMs: 200, maxOutputBytes: 1 << 20, env: { [MARK_NAME]: MARK_VALUE } };
  const how = { starter: warm };
  let pid = 0;
  const stubborn = await runScript({ ...base, command: php('ignore-term.php'), timeoutMs: 300, onSpawn: (p) => (pid = p) }, how);
  t.match(stubborn, { ok: false, code: 'E_SCRIPT_TIMEOUT' }, 'SIGTERM ignored: SIGKILL after timeout.kill');
  t.notOk(alive(pid), 'and it is gone');
  const flood = await runScript({ ...base, command: php('stderr-flood.php'), timeoutMs: 30_000, maxStderrBytes: 1000 }, how);
  t.match(flood, { ok: true }, '10 MB of stderr read to the end');
  // A pcntl_fork + setsid daemon: the reaper finds it by the run tag once the run is over.
  let said = '';
  const d = await runScript({ ...base, command: php('daemon.php'), timeoutMs: 30_000, onStdout: (c) => (said += c.toString()) }, how);
  t.match(d, { ok: true });
  const { daemon } = JSON.parse(said) as { daemon: number };
  t.ok(daemon > 0, 'the daemon ran');
  await until('the stray daemon swept', () => !alive(daemon));
  // Random state is the child's own: two runs never print the same values.
  const outs = await Promise.all(
    [1, 2].map(async () => {
      const r = await runScript({ ...base, command: php('random.php'), timeoutMs: 30_000 }, how);
      return r.ok ? (JSON.parse(r.stdout.toString()) as unknown[]) : [];
    }),
  );
  for (let i = 0; i < 6; i++) t.not(outs[0]?.[i], outs[1]?.[i], `random value ${i} differs`);
});

t.test('the stdio listener is private', async (t) => {
  const sock = warm.stdioSocket as string;
  t.ok(sock, 'listening');
  t.equal(fs.statSync(path.dirname(sock)).mode & 0o777, 0o700, 'in a 0700 directory');
  t.equal(fs.statSync(path.dirname(sock)).uid, process.getuid?.(), 'owned by this user');
  // A starter killed before close() leaves its directory: the next one removes it.
  const stale = fs.mkdtempSync(path.join(path.dirname(path.dirname(sock)), 'aggregator-warm-999999999-'));
  const next = new WarmStarter();
  const s = await started(next, php('cat.php'));
  s.stdin.end('x');
  await s.exited;
  t.notOk(fs.existsSync(stale), "a dead starter's directory is removed");
  await next.close();
  t.notOk(fs.existsSync(path.dirname(next.stdioSocket as string)), 'close() removes its own');
});

t.test('close(): no process of this test is left', async (t) => {
  t.ok(warm.parents().length > 0, 'parents ran');
  await warm.close();
  await until('no test process left after close()', () => mine().length === 0);
  t.same(mine(), []);
  t.match(await warm.start(php('cat.php'), env()), { ok: false, reason: 'warm starter closed' });
});
