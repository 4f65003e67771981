// bin/install into a scratch root (--root, like DESTDIR: no user, no systemctl) and as a dry run
// against the real system (which must change nothing). The installed units must still verify.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ROOT } from './helpers/harness.js';

const INSTALL = path.join(ROOT, 'bin', 'install');
const NODE = fs.realpathSync(process.execPath);

function install(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(INSTALL, args, { timeout: 60000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

const tmp = (t: Test) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-install-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
};

t.test('install --root: app, config, log folder, units; a second run keeps the config', async (t) => {
  const root = tmp(t);
  const first = await install(['--root', root, '--no-start']);
  t.equal(first.code, 0, first.out);
  const app = path.join(root, 'opt', 'aggregator');
  const current = fs.readlinkSync(path.join(app, 'current'));
  t.match(current, /^releases\/0\.\d+\.\d+-\d{8}-\d{6}$/, 'current -> releases/<version>-<time>');
  t.ok(fs.existsSync(path.join(app, 'current', 'dist', 'main.js')));
  t.ok(fs.existsSync(path.join(app, 'current', 'script', 'items.php')), 'the demo scripts');
  t.ok(fs.existsSync(path.join(app, 'current', 'node_modules', 'fastify')), 'runtime dependencies');
  t.notOk(fs.existsSync(path.join(app, 'current', 'node_modules', 'tap')), 'no dev dependencies');
  const config = path.join(root, 'etc', 'aggregator', 'application.properties');
  t.equal(fs.readFileSync(config, 'utf8'), fs.readFileSync(path.join(ROOT, 'etc', 'application.properties'), 'utf8'));
  t.ok(fs.statSync(path.join(root, 'var', 'log', 'aggregator')).isDirectory());

  for (const unit of ['aggregator.service', 'aggregator@.service']) {
    const file = path.join(root, 'etc', 'systemd', 'system', unit);
    const text = fs.readFileSync(file, 'utf8');
    t.match(text, `ExecStart=${NODE} /opt/aggregator/current/dist/main.js`, `${unit}: this machine's node, the runtime path`);
    t.match(text, /^User=aggregator$/m);
    const res = spawnSync('/usr/bin/systemd-analyze', ['verify', unit === 'aggregator.service' ? file : file.replace('@.', '@8001.')], {
      encoding: 'utf8',
    });
    t.equal(res.status, 0, `${unit} as installed verifies`);
    t.equal(`${res.stdout}${res.stderr}`.split('\n').filter((l) => l.includes('aggregator')).join('\n'), '');
  }
  t.match(first.out, /systemctl daemon-reload && systemctl enable --now aggregator\.service/, 'says what to run on the target');

  fs.appendFileSync(config, 'aggregator.pool.executor=7\n');
  const second = await install(['--root', root, '--no-start']);
  t.equal(second.code, 0, second.out);
  t.match(fs.readFileSync(config, 'utf8'), /aggregator\.pool\.executor=7\n$/, 'an edited config is kept');
  t.equal(fs.readdirSync(path.join(app, 'releases')).length, 2, 'a second release beside the first');
  t.not(fs.readlinkSync(path.join(app, 'current')), current, 'current points at the new one');
});

t.test('install --dry-run against the real system prints the plan and changes nothing', async (t) => {
  const watched = ['/opt/aggregator', '/etc/aggregator', '/var/log/aggregator', '/etc/systemd/system/aggregator@.service'];
  const before = watched.map((p) => fs.existsSync(p));
  const res = await install(['--dry-run', '--instances', '8001,8002']);
  t.equal(res.code, 0, res.out);
  t.same(
    watched.map((p) => fs.existsSync(p)),
    before,
    'nothing was created',
  );
  if (spawnSync('getent', ['passwd', 'aggregator']).status !== 0) t.match(res.out, /\+ useradd --system --user-group .* aggregator/);
  t.match(res.out, /\+ install -m 0644 .*application\.properties \/etc\/aggregator\/application\.properties/);
  t.match(res.out, /\+ ln -sfn releases\/\S+ \/opt\/aggregator\/current\.new/);
  t.match(res.out, /\+ systemctl enable --now aggregator@8001\.service aggregator@8002\.service/, 'one unit per instance port');
});

t.test('install --no-systemd plans no units; bad options fail', async (t) => {
  const root = tmp(t);
  // A dry run (the full install path is exercised above): the plan, and nothing created.
  const res = await install(['--root', root, '--no-systemd', '--dry-run']);
  t.equal(res.code, 0, res.out);
  t.match(res.out, /\+ ln -sfn releases\/\S+ \S+\/opt\/aggregator\/current\.new/, 'the app is installed');
  t.notMatch(res.out, /systemd\/system|systemctl/, 'no units, no systemctl');
  t.same(fs.readdirSync(root), [], 'nothing created');
  t.match(res.out, /bin\/deploy --prefix \/opt\/aggregator --no-systemd/, 'says how to run it without systemd');
  const bad = await install(['--root', path.join(root, 'bad'), '--instances', '8001,80x1']);
  t.equal(bad.code, 2, 'a bad port is refused');
  t.notOk(fs.existsSync(path.join(root, 'bad', 'opt')), 'before anything is installed');
  t.equal((await install(['--prefix', 'relative'])).code, 2);
});
