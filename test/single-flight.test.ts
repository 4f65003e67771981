// SingleFlight: identical concurrent runs share one run; each caller's signal detaches only
// that caller; the run is aborted only when every caller has left; the entry goes when the
// run settles. First with fake runs (deferred promises), then with real child processes.
import { spawn } from 'node:child_process';
import t from 'tap';
import { SingleFlight } from '../src/cache/single-flight.js';

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** A fake run: counts its starts, remembers the signal it got, settles when told. */
function fakeRun<T>() {
  const runs: { signal: AbortSignal; result: Deferred<T> }[] = [];
  const run = (signal: AbortSignal) => {
    const result = deferred<T>();
    runs.push({ signal, result });
    return result.promise;
  };
  return { run, runs };
}

/** Settled state of a promise without waiting for it. */
async function state<T>(p: Promise<T>): Promise<'pending' | 'fulfilled' | 'rejected'> {
  const marker = Symbol('pending');
  try {
    const v = await Promise.race([p, new Promise<symbol>((r) => setImmediate(() => r(marker)))]);
    return v === marker ? 'pending' : 'fulfilled';
  } catch {
    return 'rejected';
  }
}

t.test('concurrent callers of one key share one run and its result', async (t) => {
  const flight = new SingleFlight<string>();
  const { run, runs } = fakeRun<string>();
  const callers = [1, 2, 3, 4].map(() => flight.join('k', undefined, run));
  t.equal(runs.length, 1, 'one run for four callers');
  t.equal(flight.size, 1);
  runs[0]?.result.resolve('stdout');
  t.same(await Promise.all(callers), ['stdout', 'stdout', 'stdout', 'stdout']);
  t.equal(flight.size, 0, 'forgotten once settled');
  const later = flight.join('k', undefined, run);
  t.equal(runs.length, 2, 'a caller after the run settled starts a new one');
  runs[1]?.result.resolve('again');
  t.equal(await later, 'again');
});

t.test('different keys run apart', async (t) => {
  const flight = new SingleFlight<string>();
  const { run, runs } = fakeRun<string>();
  const a = flight.join('a', undefined, run);
  const b = flight.join('b', undefined, run);
  t.equal(runs.length, 2);
  runs[1]?.result.resolve('B');
  t.equal(await b, 'B');
  t.equal(await state(a), 'pending', 'a is not settled by b');
  runs[0]?.result.resolve('A');
  t.equal(await a, 'A');
});

t.test('a failure is shared too, and not remembered', async (t) => {
  const flight = new SingleFlight<string>();
  const { run, runs } = fakeRun<string>();
  const callers = [flight.join('k', undefined, run), flight.join('k', undefined, run)];
  const boom = new Error('E_SCRIPT_TIMEOUT');
  runs[0]?.result.reject(boom);
  for (const c of callers) await t.rejects(c, boom);
  t.equal(flight.size, 0);
  const next = flight.join('k', undefined, run);
  t.equal(runs.length, 2, 'the next caller runs again');
  runs[1]?.result.resolve('ok');
  t.equal(await next, 'ok');
});

t.test('a run that throws at once rejects every caller like a later failure', async (t) => {
  const flight = new SingleFlight<string>();
  const boom = new Error('spawn failed');
  const throwing = () => {
    throw boom;
  };
  await t.rejects(flight.join('k', undefined, throwing), boom);
  t.equal(flight.size, 0);
});

t.test('one caller aborting detaches only that caller, at once', async (t) => {
  const flight = new SingleFlight<string>();
  const { run, runs } = fakeRun<string>();
  const leaving = new AbortController();
  const staying = new AbortController();
  const left = flight.join('k', leaving.signal, run);
  const stays = flight.join('k', staying.signal, run);
  const plain = flight.join('k', undefined, run);
  leaving.abort();
  await t.rejects(left, { name: 'AbortError' }, 'rejects at once, while the run still runs');
  t.equal(runs[0]?.signal.aborted, false, 'the shared run goes on');
  t.equal(await state(stays), 'pending');
  runs[0]?.result.resolve('stdout');
  t.equal(await stays, 'stdout');
  t.equal(await plain, 'stdout');
});

t.test('when every caller has aborted, the run is aborted and forgotten at once', async (t) => {
  const flight = new SingleFlight<string>();
  const { run, runs } = fakeRun<string>();
  const controllers = [new AbortController(), new AbortController()];
  const callers = controllers.map((c) => flight.join('k', c.signal, run));
  controllers[0]?.abort();
  t.equal(runs[0]?.signal.aborted, false, 'one caller left: still running');
  const why = new Error('session closed');
  controllers[1]?.abort(why);
  t.equal(runs[0]?.signal.aborted, true, 'the last caller left: the run is aborted');
  t.equal(runs[0]?.signal.reason, why, "with the last caller's reason");
  await t.rejects(callers[0] as Promise<string>, { name: 'AbortError' });
  await t.rejects(callers[1] as Promise<string>, why);
  t.equal(flight.size, 0, 'forgotten before the aborted run has even settled');
  // A new caller does not join the run being torn down.
  const fresh = flight.join('k', undefined, run);
  t.equal(runs.length, 2);
  runs[0]?.result.reject(new Error('killed')); // the old run ends late: nobody hears of it
  runs[1]?.result.resolve('fresh');
  t.equal(await fresh, 'fresh');
  t.equal(flight.size, 0, "the old run's end does not remove the new entry, nor leave one");
});

t.test('a caller that never passed a signal keeps the run alive', async (t) => {
  const flight = new SingleFlight<string>();
  const { run, runs } = fakeRun<string>();
  const c = new AbortController();
  const aborted = flight.join('k', c.signal, run);
  const plain = flight.join('k', undefined, run);
  c.abort();
  await t.rejects(aborted);
  t.equal(runs[0]?.signal.aborted, false);
  runs[0]?.result.resolve('x');
  t.equal(await plain, 'x');
});

t.test('an already aborted signal rejects at once and starts nothing', async (t) => {
  const flight = new SingleFlight<string>();
  const { run, runs } = fakeRun<string>();
  await t.rejects(flight.join('k', AbortSignal.abort(), run), { name: 'AbortError' });
  t.equal(runs.length, 0);
  t.equal(flight.size, 0);
  // Nor does it count as a caller of a running flight.
  const c = new AbortController();
  const only = flight.join('k', c.signal, run);
  await t.rejects(flight.join('k', AbortSignal.abort(), run));
  c.abort();
  await t.rejects(only);
  t.equal(runs[0]?.signal.aborted, true, 'its one real caller left, so the run was aborted');
});

// ------------------------------------------------------------------ with real processes

/** A real child process (node): prints `text` and its pid after `ms`; killed by `signal`. */
function childRun(ms: number, started: (pid: number) => void) {
  return (signal: AbortSignal) =>
    new Promise<{ stdout: string; code: number | null; killedBy: NodeJS.Signals | null }>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', `setTimeout(() => process.stdout.write('answer from ' + process.pid), ${ms})`], {
        signal,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.once('spawn', () => started(child.pid ?? 0));
      child.on('error', (err) => {
        if (err.name !== 'AbortError') reject(err);
      });
      child.once('close', (code, killedBy) => resolve({ stdout, code, killedBy }));
    });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

t.test('a run that reports its start tells every caller waiting for it, and later joiners at once', async (t) => {
  const flight = new SingleFlight<string>();
  let result = deferred<string>();
  let begin!: () => void;
  const run = (_signal: AbortSignal, started: () => void) => ((begin = started), result.promise);
  const heard: string[] = [];
  const leaver = new AbortController();
  const callers = [
    flight.join('k', undefined, run, () => heard.push('first')),
    flight.join('k', undefined, run, () => heard.push('second')),
    flight.join('k', leaver.signal, run, () => heard.push('left')).catch(() => 'left early'),
    flight.join('k', undefined, run), // no onStarted: nothing to tell
  ];
  t.same(heard, [], 'nobody hears of a start before it happened');
  leaver.abort();
  begin();
  begin(); // a second report changes nothing
  t.same(heard, ['first', 'second'], 'each waiting caller once; not the one that left');
  const late = flight.join('k', undefined, run, () => heard.push('late'));
  t.same(heard, ['first', 'second', 'late'], 'a caller joining a started run hears of it at once');
  result.resolve('stdout');
  t.same(await Promise.all([...callers, late]), ['stdout', 'stdout', 'left early', 'stdout', 'stdout']);
  result = deferred<string>();
  const again = flight.join('k', undefined, run, () => heard.push('next run'));
  t.equal(heard.length, 3, "the key's next run has not started: the last one's start is forgotten");
  begin();
  t.equal(heard.at(-1), 'next run', 'it reports its own start');
  result.resolve('next');
  t.equal(await again, 'next');
});

t.test('real processes: five identical tasks start one process and get its output', async (t) => {
  const flight = new SingleFlight<{ stdout: string; code: number | null; killedBy: NodeJS.Signals | null }>();
  const pids: number[] = [];
  const run = childRun(200, (pid) => pids.push(pid));
  const results = await Promise.all([1, 2, 3, 4, 5].map(() => flight.join('same-line', new AbortController().signal, run)));
  t.equal(pids.length, 1, 'one process');
  for (const r of results) t.same(r, { stdout: `answer from ${pids[0]}`, code: 0, killedBy: null });
  t.equal(flight.size, 0);
});

t.test('real processes: the process is killed only when every waiting task has gone', async (t) => {
  type Out = { stdout: string; code: number | null; killedBy: NodeJS.Signals | null };
  const flight = new SingleFlight<Out>();
  let pid = 0;
  let startedResolve!: () => void;
  const started = new Promise<void>((r) => (startedResolve = r));
  let runDone!: Promise<Out>;
  const run = (signal: AbortSignal) => {
    runDone = childRun(60_000, (p) => ((pid = p), startedResolve()))(signal);
    return runDone;
  };
  const sessions = [new AbortController(), new AbortController(), new AbortController()];
  const callers = sessions.map((s) => flight.join('slow-line', s.signal, run));
  await started;
  t.ok(alive(pid), 'the shared process runs');
  sessions[0]?.abort();
  sessions[1]?.abort();
  await t.rejects(callers[0] as Promise<Out>);
  await t.rejects(callers[1] as Promise<Out>);
  t.ok(alive(pid), 'two of three sessions gone: the process still runs for the third');
  sessions[2]?.abort();
  await t.rejects(callers[2] as Promise<Out>);
  const end = await runDone;
  t.equal(end.killedBy, 'SIGTERM', 'killed once the last session left');
  t.equal(end.stdout, '');
  t.notOk(alive(pid));
});
