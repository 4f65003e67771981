// One real search of each basic shape through the harness (the detailed suites are elsewhere).
import t from 'tap';
import { demoRequest, invariantViolations, search, startServer } from './helpers/harness.js';

t.test('a normal search streams 9 items and ends with SESSION SUCCESS', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const res = await search(srv.wsBase, demoRequest('normal'));
  t.same(invariantViolations(res.frames), []);
  t.equal(res.frames.filter((f) => f._status === 'SENDING').length, 9);
  t.equal(res.closeCode, 1000);
  t.match(res.frames.at(-1), { _task: 'SESSION', _status: 'SUCCESS' });
  const stats = (await (await fetch(`${srv.httpBase}/stats`)).json()) as Record<string, number>;
  t.equal(stats.taskTotal, 4);
  t.equal(stats.taskSucceeded, 4);
  t.equal(stats.sessionFinished, 1);
});
