// A fresh machine's first run: bin/setup finds what is installed (Chromium as Debian's
// `chromium` or Ubuntu's `chromium-browser`) and says what it would install, and the tests'
// browser helper launches whichever Chromium exists.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { CHROMIUM_PATHS, findChromium } from './helpers/browser.js';
import { ROOT } from './helpers/harness.js';

const SETUP = path.join(ROOT, 'bin', 'setup');

/** A folder to serve as the whole PATH: fake programs named `names`, plus what bin/setup itself uses. */
function fakePath(names: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-setup-'));
  for (const name of names) fs.writeFileSync(path.join(dir, name), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  fs.symlinkSync('/usr/bin/dirname', path.join(dir, 'dirname'));
  return dir;
}

/** bin/setup MODE --dry-run with only `dir` on PATH; its one line of output. */
function dryRun(mode: 'run' | 'test', dir: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('/bin/sh', [SETUP, mode, '--dry-run'], { env: { PATH: dir } }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
    ),
  );
}

// bin/setup picks the package by distribution; this machine's decides the expected name.
const osRelease = fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : '';
const chromiumPackage = /^(ID|ID_LIKE)=.*\bubuntu\b/m.test(osRelease) ? 'chromium-browser' : 'chromium';

t.test('bin/setup finds Chromium under either name', async (t) => {
  const dirs: string[] = [];
  t.teardown(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const tools = ['php', 'nginx', 'systemd-analyze'];
  const fake = (names: string[]) => {
    const dir = fakePath(names);
    dirs.push(dir);
    return dir;
  };
  t.equal(await dryRun('test', fake([...tools, 'chromium'])), 'bin/setup: missing: nothing', "Debian's chromium");
  t.equal(await dryRun('test', fake([...tools, 'chromium-browser'])), 'bin/setup: missing: nothing', "Ubuntu's chromium-browser");
  t.equal(await dryRun('test', fake(tools)), `bin/setup: missing: ${chromiumPackage}`, `neither: installs ${chromiumPackage}`);
  t.equal(await dryRun('run', fake(['php'])), 'bin/setup: missing: nothing', 'the demo needs only PHP');
  t.equal(await dryRun('run', fake([])), 'bin/setup: missing: php-cli');
});

t.test('the browser helper launches whichever Chromium exists', async (t) => {
  const only = (file: string) => (f: string) => f === file;
  t.equal(findChromium({}, only('/usr/bin/chromium')), '/usr/bin/chromium', 'Debian');
  t.equal(findChromium({}, only('/usr/bin/chromium-browser')), '/usr/bin/chromium-browser', 'Ubuntu');
  t.equal(findChromium({}, only('/snap/bin/chromium')), '/snap/bin/chromium', 'the snap');
  t.equal(findChromium({ PATH: '/opt/x/bin:/usr/local/bin' }, only('/usr/local/bin/chromium-browser')), '/usr/local/bin/chromium-browser', 'on PATH');
  t.equal(
    findChromium({}, (f) => CHROMIUM_PATHS.includes(f)),
    '/usr/bin/chromium',
    'both installed: the first of CHROMIUM_PATHS',
  );
  t.equal(findChromium({ CHROMIUM_PATH: '/custom/chrome' }, () => false), '/custom/chrome', 'CHROMIUM_PATH wins');
  t.throws(() => findChromium({ PATH: '/nowhere' }, () => false), /no Chromium found/);
  const real = findChromium();
  t.ok(fs.statSync(real).isFile(), `this machine's: ${real}`);
});
