// bench/soak.ts for 20 seconds (the full run is 10 minutes by hand: npm run soak, recorded in
// docs/reliability.md): the real server process, real PHP, 50 clients closing at random and
// reusing sockets. 20 seconds is too short to judge RSS flatness (the heap is still growing to
// its working size), so this checks what must hold at any length: no invariant ever broken,
// every session and script gone at rest, descriptors at rest back where they started, no
// script left after the server exits, and memory within a sane bound.
import t from 'tap';
import { formatSummary, runSoak } from '../bench/soak.js';

t.test('soak, 20-second smoke', async (t) => {
  // A pool of 8 and slower demo scripts: the same 50 clients and mix at a third of the PHP
  // starts, so the other test files running beside this one keep their CPU.
  const s = await runSoak({ seconds: 20, clients: 50, warmupSeconds: 5, demoDelayMs: 300, pool: 8, progress: false });
  t.comment(formatSummary(s));
  t.ok(s.searches >= 50, `${s.searches} searches ran`);
  t.same(s.invariantBreaks, [], 'no /stats or frame invariant (docs/protocol.md) broke');
  t.ok(s.samples.length >= 12, `sampled about every second (${s.samples.length} samples)`);
  t.ok(s.statsChecks >= 10, `/stats invariants checked ${s.statsChecks} times`);
  t.ok(s.scripts.max > 0, 'scripts were seen running');
  t.equal(s.scripts.leftAtRest, 0, 'no script process at rest');
  t.equal(s.scripts.leftAfterExit, 0, 'none after the server exited');
  t.ok(s.fds.idleAfter <= s.fds.idleBefore + 2, `descriptors at rest: ${s.fds.idleBefore} → ${s.fds.idleAfter}`);
  t.ok(s.rss.maxMb < 1024, `RSS stayed under 1 GB (max ${s.rss.maxMb.toFixed(0)} MB)`);
  const sessionEnds = Object.entries(s.outcomes).filter(([k]) => !k.startsWith('closed by client'));
  t.ok(sessionEnds.some(([k]) => k.startsWith('SUCCESS')), 'searches succeeded');
  t.notOk(Object.keys(s.outcomes).some((k) => k.includes('E_UNKNOWN') || k.startsWith('HUNG')), 'no E_UNKNOWN, no hung search');
});
