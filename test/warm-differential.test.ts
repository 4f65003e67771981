// The warm runner against the spawn runner: each fixture in test/fixtures/differential/ runs
// under both with the same command line, environment and stdin, and must give the same stdout,
// stderr and exit status, byte for byte. Masked, because they must differ between any two runs:
// the script's own pid (replaced by "<pid>" in both outputs) and the REQUEST_TIME* values (the
// fixtures that print $_SERVER replace them, keeping their place and type).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { type Command, parseCommand } from '../src/command.js';
import { spawnStarter } from '../src/processes/spawn.js';
import type { ExitStatus, ScriptStarter } from '../src/processes/starter.js';
import { WarmStarter, warmEligibility } from '../src/processes/warm.js';
import { FIXTURES } from './helpers/harness.js';

const PHP = '/usr/bin/php';
const DIR = path.relative(process.cwd(), path.join(FIXTURES, 'differential')) || '.';
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'warm-diff-'));
const warm = new WarmStarter();
t.teardown(async () => {
  await warm.close();
  fs.rmSync(TMP, { recursive: true, force: true });
});

interface Outcome {
  stdout: string;
  stderr: string;
  status: ExitStatus;
}

const ENV: NodeJS.ProcessEnv = {
  ...process.env,
  AGGREGATOR_SESSION: '17',
  AGGREGATOR_TASK_ID: '42',
  AGG_DIFF_PLAIN: 'plain value',
  AGG_DIFF_EMPTY: '',
  'AGG.DOT': 'dots are not variable names',
  'AGG SPACE': 'nor spaces',
  '1234': 'numeric names are integer keys',
  AGG_DIFF_UTF8: 'zürich ✓',
};

/** Runs one command to its end: stdout and stderr read to EOF, the exit status. */
async function run(starter: ScriptStarter, command: Command, stdin: string | Buffer, env = ENV): Promise<Outcome> {
  const res = await starter.start(command, env);
  if (!res.ok) throw new Error(`${starter.name} could not start ${command.line}: ${res.reason}`);
  const { script } = res;
  const collect = (s: NodeJS.ReadableStream) =>
    new Promise<Buffer>((resolve) => {
      const parts: Buffer[] = [];
      s.on('data', (c: Buffer) => parts.push(c));
      s.on('close', () => resolve(Buffer.concat(parts)));
    });
  const out = collect(script.stdout);
  const err = collect(script.stderr);
  script.stdin.on('error', () => {});
  script.stdin.end(stdin);
  const status = await script.exited;
  // As the runner does: what is left of the group goes once the leader has exited.
  try {
    process.kill(-script.pid, 'SIGKILL');
  } catch {
    // nothing left
  }
  const pid = new RegExp(`\\b${script.pid}\\b`, 'g');
  const mask = (b: Buffer) => b.toString('latin1').replace(pid, '<pid>');
  return { stdout: mask(await out), stderr: mask(await err), status };
}

async function same(tt: Test, line: string, stdin: string | Buffer = '{"supplier":1}\n', env = ENV): Promise<Outcome> {
  const command = parseCommand(line);
  tt.ok(warmEligibility(command, env).ok, `runs warm: ${line}`);
  const w = await run(warm, command, stdin, env);
  const s = await run(spawnStarter, command, stdin, env);
  tt.same(w.status, s.status, 'exit status');
  tt.equal(w.stdout, s.stdout, 'stdout');
  tt.equal(w.stderr, s.stderr, 'stderr');
  return s;
}

const php = (script: string, ...rest: string[]) => [PHP, '-d', 'display_errors=stderr', ...rest, path.join(DIR, script)].join(' ');

const cases: { name: string; line: string; stdin?: string; check?: (o: Outcome) => void }[] = [
  { name: 'globals, global, statics, clean global scope', line: php('globals.php') },
  { name: '$argv and $argc', line: `${php('argv.php')} one 'two words' "th'ree" --flag -d x=y ünï` },
  { name: '__FILE__, __DIR__, cwd, included files (relative path)', line: php('file-dir.php') },
  { name: 'getenv() and $_ENV (variables_order without E)', line: php('env.php') },
  { name: 'getenv() and $_ENV (variables_order with E)', line: php('env.php', '-d', 'variables_order=EGPCS') },
  { name: '$_SERVER, its entries and their order', line: php('server.php', '-d', 'variables_order=EGPCS') },
  { name: '$_SERVER with the default variables_order', line: php('server.php') },
  { name: 'ini_get of -d options', line: php('ini.php', '-d', 'precision=5', '-d', 'memory_limit=64M') },
  { name: 'fgets(STDIN)', line: php('stdin-fgets.php'), stdin: 'first line\nsecond\nthird without newline' },
  { name: "file_get_contents('php://stdin')", line: php('stdin-all.php'), stdin: 'x'.repeat(300_000) },
  { name: 'exit(3)', line: php('exit-n.php'), check: (o) => t.same(o.status, { code: 3, signal: null }) },
  { name: 'fatal error', line: php('fatal.php'), check: (o) => t.same(o.status, { code: 255, signal: null }) },
  { name: 'uncaught exception', line: php('uncaught.php'), check: (o) => t.match(o.stderr, /Stack trace:\n#0 \S+uncaught.php\(8\): inner\(\)\n#1 \S+\(11\): outer\(\)\n#2 {main}/) },
  { name: 'uncaught exception, display_errors on stdout', line: `${PHP} -d display_errors=1 ${path.join(DIR, 'uncaught.php')}` },
  { name: 'traces of caught exceptions, debug_backtrace', line: php('caught-trace.php') },
  { name: 'destructors and shutdown functions inside ob_start', line: php('ob-shutdown.php') },
  { name: 'exit() in a shutdown function', line: php('exit-in-shutdown.php'), check: (o) => t.same(o.status, { code: 4, signal: null }) },
  { name: 'exception from a destructor at shutdown', line: php('destructor-throws.php') },
  { name: 'set_exception_handler', line: php('exception-handler.php') },
  { name: 'memory leak past memory_limit', line: php('memory.php', '-d', 'memory_limit=16M'), check: (o) => t.match(o.stderr, /Allowed memory size/) },
  { name: 'segfault', line: php('segv.php'), check: (o) => t.same(o.status, { code: null, signal: 'SIGSEGV' }) },
  { name: 'pcntl_fork in the script', line: php('fork.php'), check: (o) => t.match(o.stdout, /child exited 5\n.*second child exited 255/s) },
  { name: "die('x')", line: php('die.php'), check: (o) => t.same(o.stdout, 'before die\nx') },
  { name: 'object handles and resource ids', line: php('objects.php') },
  { name: 'shebang line', line: php('shebang.php') },
  { name: '1 MB of output that is not UTF-8', line: php('output.php') },
  { name: 'a script that never reads stdin', line: php('no-stdin.php'), stdin: 'y'.repeat(1 << 20) },
  { name: 'process, signals, SAPI', line: php('misc.php') },
  { name: 'getmyinode, getlastmod, get_current_user (the script file)', line: php('script-stat.php') },
  // The user's own choice of opcache (warm turns it on unless told otherwise): without it too.
  { name: 'without opcache: globals', line: php('globals.php', '-d', 'opcache.enable_cli=0') },
  { name: 'without opcache: uncaught exception', line: php('uncaught.php', '-d', 'opcache.enable_cli=0') },
  { name: 'without opcache: objects and resources', line: php('objects.php', '-d', 'opcache.enable_cli=0') },
  { name: 'without opcache: shutdown inside ob_start', line: php('ob-shutdown.php', '-d', 'opcache.enable_cli=0') },
  { name: 'a script that does not exist', line: php('no-such-script.php'), check: (o) => t.same(o.status, { code: 1, signal: null }) },
];

for (const c of cases) {
  t.test(c.name, async (tt) => {
    const o = await same(tt, c.line, c.stdin);
    c.check?.(o);
  });
}

t.test('a script reached through a symlink', async (tt) => {
  const link = path.join(TMP, 'link.php');
  fs.symlinkSync(path.resolve(DIR, 'file-dir.php'), link);
  const o = await same(tt, `${PHP} -d display_errors=stderr ${link}`);
  tt.match(o.stdout, /differential\/file-dir\.php\n/, '__FILE__ is the real path');
});

t.test('a script edited on disk between two tasks', async (tt) => {
  const file = path.join(TMP, 'edited.php');
  const line = `${PHP} -d display_errors=stderr ${file}`;
  // Old enough for opcache to cache it (opcache.file_update_protection), then edited: the new
  // mtime must make the next task compile it again.
  const past = Date.now() / 1000 - 3600;
  fs.writeFileSync(file, '<?php echo "version 1\\n";');
  fs.utimesSync(file, past, past);
  tt.equal((await same(tt, line)).stdout, 'version 1\n');
  tt.equal((await same(tt, line)).stdout, 'version 1\n', 'again (from the cache)');
  fs.writeFileSync(file, '<?php echo "version 2, longer\\n";');
  fs.utimesSync(file, past + 60, past + 60);
  tt.equal((await same(tt, line)).stdout, 'version 2, longer\n');
  // Edited just now (the usual case): seen at once as well.
  fs.writeFileSync(file, '<?php echo "version 3\\n";');
  tt.equal((await same(tt, line)).stdout, 'version 3\n');
});
