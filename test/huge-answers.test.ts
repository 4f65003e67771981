// Huge answers in bounded memory: three browsers that never read, each searching a supplier
// whose items script answers 100,000 items. stdout crosses from the launcher as bytes and is
// parsed once, frames are built only as the socket takes them, and what a session could not
// deliver by its deadline is dropped with the connection. The server and its helpers (a real
// `node dist/main.js`, its launcher and warm PHP parent, each with an RSS of its own) add less
// than 150 MB to what they held after one such search, the sessions end and the connections are
// dropped. (bench/10-huge-answers.ts prints the same figure.)
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { helperPids, withHelpersKb } from '../bench/lib/procs.js';
import { ROOT, search, waitFor } from './helpers/harness.js';
import { clientFrame, rawUpgrade } from './helpers/raw-ws.js';
import { startReal, statsOf } from './helpers/real-process.js';

const ITEMS = 100_000;
const PHP = '/usr/bin/php -d display_errors=stderr';
const request = { n: 1, sleep: '0', items: ITEMS };

const drops = (logDir: string) =>
  fs
    .readFileSync(path.join(logDir, 'aggregator.log'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('did not take the last frames')).length;

t.test('three browsers not reading 100,000 items each: < 150 MB added, sessions end, connections dropped', async (t) => {
  const srv = await startReal({
    'aggregator.script.suppliers': `${PHP} ${path.join(ROOT, 'bench/scripts/suppliers.php')}`,
    'aggregator.script.items': `${PHP} ${path.join(ROOT, 'bench/scripts/items.php')}`,
    'aggregator.fields.request': 'n,sleep,items',
    'aggregator.fields.faulty': 'n',
    'aggregator.timeout.script': 60,
    // Long enough for the reading search on a busy machine; the three end at this deadline.
    'aggregator.timeout.session': 8,
  });
  t.teardown(() => srv.kill());
  // The baseline, as bench/10-huge-answers.ts takes it: after one such search to a reading
  // browser, so the launcher and the warm PHP parent are up, the code is compiled and the heap has
  // held such an answer once. What is measured is what the three add; from a fresh start the
  // first-time growth (about 20 MB more) came on top, and beside a CPU hog it once reached 151 MB.
  const first = await search(srv.wsBase, request, { timeoutMs: 60_000 });
  t.equal(first.frames.filter((f) => f._status === 'SENDING').length, ITEMS, 'one such search to a reading browser first');
  t.equal(first.closeCode, 1000);
  t.ok(helperPids(srv.pid).length > 0, 'the launcher runs');
  const baseKb = withHelpersKb(srv.pid);

  let peakKb = baseKb;
  const sampler = setInterval(() => (peakKb = Math.max(peakKb, withHelpersKb(srv.pid))), 20);
  t.teardown(() => clearInterval(sampler));
  const raws = await Promise.all([0, 1, 2].map(() => rawUpgrade(srv.port)));
  for (const raw of raws) {
    raw.socket.on('error', () => {});
    raw.socket.pause(); // reads nothing from now on
    raw.socket.write(clientFrame(1, JSON.stringify(request)));
  }
  t.ok(await waitFor(async () => (await statsOf(srv.httpBase))?.sessionFinished === 4, 60_000, 50), 'the three sessions ended (and the first one)');
  // At the session deadline each connection is dropped: frames were still waiting, or (when the
  // kernel's buffers took them all) the close was not answered.
  t.ok(await waitFor(() => drops(srv.logDir) === 3, 30_000, 50), 'at the session deadline the server dropped each connection, and said so');
  clearInterval(sampler);
  peakKb = Math.max(peakKb, withHelpersKb(srv.pid));
  const addedMb = (peakKb - baseKb) / 1024;
  t.ok(addedMb < 150, `server + launcher + warm parent added ${addedMb.toFixed(0)} MB at the peak (< 150 MB)`);
  const stats = await statsOf(srv.httpBase);
  t.match(stats, { sessionAlive: 0, taskPending: 0, taskRunning: 0 });
  t.equal((await fetch(`${srv.httpBase}/health`)).status, 200, 'the server is fine');
  // A paused client cannot see its connection go: reading again, it gets what the kernel holds, then the end.
  for (const raw of raws) raw.socket.resume();
  t.ok(await waitFor(() => raws.every((r) => r.socket.destroyed || r.socket.readableEnded), 30_000, 20), 'every client sees its connection end');
  srv.child.kill('SIGTERM');
  t.equal((await srv.exited).code, 0);
});
