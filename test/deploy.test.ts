// bin/deploy without systemd (pid file mode) on loopback, as an admin runs it: a first release,
// an upgrade that stops the old server and starts the new one, and a broken release that is
// rolled back. Every server it started is killed in teardown.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ROOT, demoRequest, invariantViolations, processesMatching, search } from './helpers/harness.js';
import { freePort } from './helpers/nginx.js';

const DEPLOY = path.join(ROOT, 'bin', 'deploy');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function deploy(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(DEPLOY, args, { env: { ...process.env, AGGREGATOR_DEMO_DELAY_MS: '0' }, timeout: 60000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as NodeJS.ErrnoException & { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const cwdOf = (pid: number) => fs.realpathSync(`/proc/${pid}/cwd`);
const health = (port: number) => fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status, () => 0);

/** A source tree like ROOT whose server exits at once: dist/main.js fails. Hard links, so fast. */
function brokenSource(dir: string): string {
  const src = path.join(dir, 'broken-src');
  fs.mkdirSync(path.join(src, 'dist'), { recursive: true });
  for (const part of ['script', 'public', 'package.json', 'package-lock.json']) {
    fs.cpSync(path.join(ROOT, part), path.join(src, part), { recursive: true });
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(src, 'node_modules'));
  fs.writeFileSync(path.join(src, 'dist', 'main.js'), "process.stderr.write('broken build\\n'); process.exit(1);\n");
  return src;
}

t.test('deploy, upgrade, and roll back a broken release, without systemd', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-deploy-'));
  const prefix = path.join(dir, 'opt');
  const logs = path.join(dir, 'logs');
  const pidfile = path.join(prefix, 'run', 'aggregator.pid');
  const port = await freePort();
  t.teardown(() => {
    // Everything deploy started runs from under `dir` or logs there: kill it all.
    for (const pid of [...processesMatching(dir), ...processesMatching(prefix)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const common = ['--prefix', prefix, '--no-systemd', '--port', String(port), '--health-timeout', '15', '--stop-timeout', '5'];
  const serverArgs = ['--', `-Dlogging.file.path=${logs}`, '-Daggregator.timeout.kill=0.3'];
  const pid = () => Number(fs.readFileSync(pidfile, 'utf8'));

  // 1. First release.
  const first = await deploy([...common, '--version', 'v1', ...serverArgs]);
  t.equal(first.code, 0, `v1 deployed\n${first.stderr}`);
  t.equal(fs.readlinkSync(path.join(prefix, 'current')), 'releases/v1');
  const pid1 = pid();
  t.equal(cwdOf(pid1), fs.realpathSync(path.join(prefix, 'releases', 'v1')), 'the server runs from releases/v1');
  t.equal(await health(port), 200);
  const res = await search(`ws://127.0.0.1:${port}`, demoRequest('normal'));
  t.same(invariantViolations(res.frames), []);
  t.equal(res.frames.filter((f) => f._status === 'SENDING').length, 9, 'PHP scripts run from the release');
  t.notOk(fs.existsSync(path.join(prefix, 'releases', 'v1', 'node_modules', 'typescript')), 'dev dependencies pruned');
  t.ok(fs.existsSync(path.join(prefix, 'releases', 'v1', 'node_modules', 'fastify')), 'runtime dependencies kept');

  // 2. Upgrade: the old server is stopped (gracefully: its log says so), the new one answers.
  const second = await deploy([...common, '--version', 'v2', ...serverArgs]);
  t.equal(second.code, 0, `v2 deployed\n${second.stderr}`);
  const pid2 = pid();
  t.not(pid2, pid1);
  t.throws(() => process.kill(pid1, 0), 'the v1 server is gone');
  t.equal(cwdOf(pid2), fs.realpathSync(path.join(prefix, 'releases', 'v2')));
  t.equal(fs.readlinkSync(path.join(prefix, 'current')), 'releases/v2');
  t.equal(await health(port), 200);
  const log = fs.readFileSync(path.join(logs, 'aggregator.log'), 'utf8');
  t.match(log, /"signal":"SIGTERM"[^\n]*"msg":"shutting down"/, 'v1 got SIGTERM and shut down cleanly');
  t.ok(fs.existsSync(path.join(prefix, 'releases', 'v1')), 'the old release stays for a roll-back');

  // 3. A broken release: it is stopped, `current` goes back to v2, v2 runs again, exit code 1.
  const third = await deploy([...common, '--version', 'v3', '--from', brokenSource(dir), ...serverArgs]);
  t.equal(third.code, 1, 'exit code 1: rolled back');
  t.match(third.stderr, /did not come up/);
  t.match(third.stderr, /broken build/, "the new version's output is shown");
  t.match(third.stderr, /rolled back: v2 runs again/);
  t.equal(fs.readlinkSync(path.join(prefix, 'current')), 'releases/v2', 'current points at v2 again');
  const pid3 = pid();
  t.not(pid3, pid2, 'v2 was restarted');
  t.equal(cwdOf(pid3), fs.realpathSync(path.join(prefix, 'releases', 'v2')));
  t.equal(await health(port), 200, 'and answers');
  t.equal(processesMatching(path.join(prefix, 'releases', 'v3')).length, 0, 'nothing of v3 runs');
});

t.test('usage errors change nothing', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-deploy-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bad = await deploy(['--prefix', dir, '--from', dir, '--no-systemd']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /dist\/main\.js is missing/);
  t.same(fs.readdirSync(dir), [], 'no release was created');
  const unknown = await deploy(['--bogus']);
  t.equal(unknown.code, 2);
});

t.test('systemd mode, as a dry run: units restarted one at a time, each checked on its own port', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-deploy-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const res = await deploy(['--prefix', dir, '--dry-run', '--version', 'v9', '--unit', 'aggregator@8001', '--unit', 'aggregator@8002.service']);
  t.equal(res.code, 0, res.stderr);
  const plan = res.stdout.split('\n').filter((l) => l.startsWith('+ '));
  const steps = plan.filter((l) => /systemctl|wait for/.test(l));
  t.same(steps, [
    '+ systemctl daemon-reload',
    '+ systemctl stop aggregator@8001',
    '+ systemctl start aggregator@8001',
    '+ wait for http://127.0.0.1:8001/health',
    '+ systemctl stop aggregator@8002.service',
    '+ systemctl start aggregator@8002.service',
    '+ wait for http://127.0.0.1:8002/health',
  ]);
  t.ok(plan.some((l) => l.includes('ln -sfn releases/v9')), 'current is switched before the restarts');
  t.same(fs.readdirSync(dir), [], 'a dry run creates nothing');
});
