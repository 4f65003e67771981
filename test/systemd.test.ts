// The systemd units in etc/systemd/: `systemd-analyze verify` is clean (it runs without a systemd
// PID 1: it parses the unit, checks every directive and that ExecStart's binary exists), the
// directives docs/service.md relies on are there, and the ExecStart command line itself starts a
// working aggregator that stops cleanly on the unit's KillSignal.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ROOT, demoRequest, invariantViolations, processesMatching, search, waitFor } from './helpers/harness.js';
import { freePort } from './helpers/nginx.js';

const ANALYZE = '/usr/bin/systemd-analyze';
const UNITS = path.join(ROOT, 'etc', 'systemd');
const NODE = fs.realpathSync(process.execPath);

const read = (unit: string) => fs.readFileSync(path.join(UNITS, unit), 'utf8');

/** Directive → values (a key may repeat), comments and sections ignored. */
function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1] ?? '', [...(out.get(m[1] ?? '') ?? []), m[2] ?? '']);
  }
  return out;
}

/** The unit as shipped, but with this machine's node binary (verify checks that it exists). */
function templated(dir: string, unit: string, text = read(unit)): string {
  const file = path.join(dir, unit);
  fs.writeFileSync(file, text.replaceAll('ExecStart=/usr/bin/node ', `ExecStart=${NODE} `));
  return file;
}

function verify(file: string): { status: number | null; out: string } {
  const res = spawnSync(ANALYZE, ['verify', file], { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_COLOR: '0' } });
  return { status: res.status, out: `${res.stdout}${res.stderr}` };
}

const tmp = (t: Test) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-systemd-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
};

t.test('systemd-analyze verify: both units clean, and it does catch mistakes here', async (t) => {
  t.ok(fs.existsSync(ANALYZE), `${ANALYZE} is installed (bin/setup test installs systemd)`);
  const dir = tmp(t);
  const single = templated(dir, 'aggregator.service');
  templated(dir, 'aggregator@.service');
  for (const file of [single, path.join(dir, 'aggregator@8001.service')]) {
    const res = verify(file);
    t.equal(res.status, 0, `verify ${path.basename(file)} exits 0`);
    t.equal(res.out.split('\n').filter((l) => l.includes('aggregator')).join('\n'), '', 'and says nothing about our unit');
  }
  // Negative controls: the same check on broken copies must fail, or it proves nothing.
  const typo = templated(dir, 'aggregator.service', read('aggregator.service').replace('KillMode=', 'KilMode='));
  t.match(verify(typo).out, /Unknown key 'KilMode'/, 'an unknown directive is reported');
  const noBinary = path.join(dir, 'broken.service');
  fs.writeFileSync(noBinary, read('aggregator.service').replace('ExecStart=/usr/bin/node ', 'ExecStart=/nonexistent/node '));
  t.not(verify(noBinary).status, 0, 'a missing ExecStart binary fails');
});

t.test('the directives docs/service.md relies on', async (t) => {
  for (const unit of ['aggregator.service', 'aggregator@.service']) {
    const d = directives(read(unit));
    const one = (k: string) => d.get(k)?.at(-1);
    t.equal(one('KillMode'), 'control-group', `${unit}: KillMode=control-group`);
    t.equal(one('Restart'), 'on-failure', `${unit}: Restart=on-failure`);
    t.equal(one('KillSignal'), 'SIGTERM');
    t.ok(one('User') && one('User') !== 'root', `${unit}: a dedicated user (${one('User')})`);
    t.ok(Number(one('LimitNOFILE')) >= 65536, `${unit}: LimitNOFILE ${one('LimitNOFILE')} >= 65536 (10,000 sockets + pipes)`);
    for (const [k, v] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
    ]) {
      t.equal(one(k ?? ''), v, `${unit}: ${k}=${v}`);
    }
    t.match(one('ReadWritePaths') ?? '', /\/var\/log\/aggregator/, `${unit}: the log folder stays writable`);
    t.notOk(d.has('MemoryDenyWriteExecute'), `${unit}: no MemoryDenyWriteExecute (the V8 and PHP JITs need it off)`);
    t.ok(Number(one('TimeoutStopSec')) >= 3, `${unit}: TimeoutStopSec leaves room for timeout.kill + 2 s`);
    t.match(one('RestrictAddressFamilies') ?? '', /AF_INET\b.*AF_INET6/, `${unit}: scripts can reach suppliers`);
  }
  const exec = directives(read('aggregator@.service')).get('ExecStart')?.[0] ?? '';
  t.match(exec, /-Dserver\.port=%i/, 'the template: instance = port');
  t.match(exec, /-Dlogging\.file\.path=\/var\/log\/aggregator\/%i/, 'one log folder per instance');
  t.match(exec, /-Daggregator\.metrics\.node=%H-%i/, 'one metrics label per instance');
});

t.test("the template's ExecStart starts a working aggregator that stops on KillSignal", async (t) => {
  const dir = tmp(t);
  const d = directives(read('aggregator@.service'));
  const port = await freePort();
  const logs = path.join(dir, 'log');
  const config = path.join(dir, 'application.properties');
  fs.copyFileSync(path.join(ROOT, 'etc', 'application.properties'), config);
  // systemd's specifiers and the installed paths, mapped onto this checkout.
  const sub = (s: string) =>
    s
      .replaceAll('%i', String(port))
      .replaceAll('%H', os.hostname())
      .replaceAll('/opt/aggregator/current', ROOT)
      .replaceAll('/etc/aggregator/application.properties', config)
      .replaceAll('/var/log/aggregator', logs);
  const [bin, ...args] = sub(d.get('ExecStart')?.[0] ?? '').split(/\s+/);
  t.equal(bin, '/usr/bin/node');
  const child = spawn(NODE, args, {
    cwd: sub(d.get('WorkingDirectory')?.[0] ?? ''),
    env: { ...process.env, AGGREGATOR_DEMO_DELAY_MS: '0', NODE_ENV: 'production' },
    stdio: 'ignore',
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const up = await waitFor(() => fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status === 200, () => false), 10000, 100);
  t.ok(up, `listening on %i = ${port}`);
  const res = await search(`ws://127.0.0.1:${port}`, demoRequest('normal'));
  t.same(invariantViolations(res.frames), []);
  t.equal(res.frames.at(-1)?._status, 'SUCCESS', 'PHP scripts run from WorkingDirectory');
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.match(metrics, `instance="${os.hostname()}-${port}"`, 'metrics label %H-%i');
  t.ok(fs.existsSync(path.join(logs, String(port), 'aggregator.log')), 'logs in /var/log/aggregator/%i');
  child.kill((d.get('KillSignal')?.[0] ?? 'SIGTERM') as NodeJS.Signals);
  t.equal(await exited, 0, 'exit 0 on KillSignal');
  t.ok(await waitFor(() => processesMatching(logs).length === 0, 1000), 'nothing of it is left (its launcher exits too)');
});
