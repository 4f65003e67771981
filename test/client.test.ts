// public/client.js, the browser client module, run in Node against a real aggregator (the
// `ws` package stands in for the browser's WebSocket): task tracking, items, ends, echo.
import t from 'tap';
import WebSocket from 'ws';
import { type Frame, type SearchEnd, type Task, echo, endpoint, search } from '../public/client.js';
import { demoRequest, invariantViolations, startServer, waitFor } from './helpers/harness.js';

t.test('endpoint() is relative to the page, so it works behind a prefix', async (t) => {
  t.equal(endpoint('ws', 'http://127.0.0.1:8000/'), 'ws://127.0.0.1:8000/ws');
  t.equal(endpoint('ws', 'https://shop.example/ws/'), 'wss://shop.example/ws/ws');
  t.equal(endpoint('echo', 'https://shop.example/ws/index.html?x=1'), 'wss://shop.example/ws/echo');
});

t.test('against a real aggregator', async (t) => {
  const srv = await startServer({ 'aggregator.timeout.script': 1 });
  t.teardown(() => srv.close());
  const url = `${srv.wsBase}/ws`;

  t.test('normal: every task change and item is reported, then the end', async (t) => {
    const frames: Frame[] = [];
    const changes: string[] = [];
    const items: Array<Record<string, unknown>> = [];
    let ended: SearchEnd | undefined;
    const h = search(demoRequest('normal'), {
      url,
      WebSocket,
      onFrame: (f) => frames.push(f),
      onTask: (task: Task) => changes.push(`${task.id}:${task.status}`),
      onItem: (item, task) => items.push({ ...item, task: task.id }),
      onEnd: (end) => (ended = end),
    });
    const end = await h.done;
    t.same(invariantViolations(frames as never), []);
    t.equal(ended, end, 'onEnd gets the same object as done');
    t.match(end, { status: 'SUCCESS', closeCode: 1000, closedByClient: false, tasks: 4, openTasks: 0, items: 9 });
    t.notOk('error' in end);
    t.equal(items.length, 9);
    t.ok(
      items.every((i) => !Object.keys(i).some((k) => k.startsWith('_'))),
      'items come without the reserved fields',
    );
    t.ok(items.every((i) => typeof i.code === 'string' && typeof i.price === 'string'));
    const itemTasks = [...h.tasks.values()].filter((x) => x.kind === 'ITEMS');
    t.equal(itemTasks.length, 3);
    t.same(
      itemTasks.map((x) => [x.status, x.items, x.info]).sort(),
      [1, 2, 3].map((n) => ['SUCCESS', 3, { supplier: `normal-${n}` }]),
    );
    // Each ITEMS task: PENDING, SENDING (first item), SUCCESS — in that order.
    for (const task of itemTasks) {
      t.same(
        changes.filter((c) => c.startsWith(`${task.id}:`)),
        [`${task.id}:PENDING`, `${task.id}:SENDING`, `${task.id}:SUCCESS`],
      );
    }
    t.equal(h.session, frames[0]?._session);
  });

  t.test('analog: nested tasks carry their parent', async (t) => {
    const h = search(demoRequest('analog'), { url, WebSocket });
    const end = await h.done;
    t.match(end, { status: 'SUCCESS', items: 15, tasks: 6 });
    const children = [...h.tasks.values()].filter((x) => x.parent !== undefined);
    t.equal(children.length, 2);
    const parent = h.tasks.get(children[0]!.parent!);
    t.match(parent, { kind: 'ITEMS', info: { supplier: 'analog-3' } });
  });

  t.test('a task error is kept on the task; the session still succeeds', async (t) => {
    const end = await search(demoRequest('itemsError'), { url, WebSocket }).done;
    t.match(end, { status: 'SUCCESS', items: 0 });
    const h = search(demoRequest('suppliersTimeout'), { url, WebSocket });
    const end2 = await h.done;
    t.match(end2, { status: 'ERROR', error: 'E_SCRIPT_TIMEOUT', closeCode: 1000 });
    t.match([...h.tasks.values()], [{ kind: 'SUPPLIERS', status: 'ERROR', error: 'E_SCRIPT_TIMEOUT' }]);
    t.match(end2.params, { code: 'suppliersTimeout', brand: 'ctr' });
    t.notOk(JSON.stringify(end2).includes('secret-apikey'), 'the apikey is not echoed');
  });

  t.test('a string request is sent as is: bad JSON', async (t) => {
    const end = await search('{"code":', { url, WebSocket }).done;
    t.match(end, { status: 'ERROR', error: 'E_REQUEST_JSON', closeCode: 4400, closeReason: 'E_REQUEST_JSON', tasks: 0 });
  });

  t.test('missing field', async (t) => {
    const end = await search({ code: 'normal', brand: 'ctr' }, { url, WebSocket }).done;
    t.match(end, { status: 'ERROR', error: 'E_ILLEGAL_REQUEST', closeCode: 4400 });
  });

  t.test('close() right after sending ends as CLOSED, with no error', async (t) => {
    const before = srv.agg.stats.toJSON().sessionTotal;
    const h = search(demoRequest('itemsTimeout'), { url, WebSocket, onSent: (handle) => handle.close() });
    const end = await h.done;
    t.match(end, { status: 'CLOSED', closedByClient: true, closeCode: 1000 });
    t.notOk('error' in end);
    t.equal(srv.agg.stats.toJSON().sessionTotal, before + 1, 'the session was opened');
    t.ok(await waitFor(() => srv.agg.sessions.size === 0), 'and the server ended it');
  });

  t.test('close() while connecting sends nothing and still ends', async (t) => {
    const h = search(demoRequest('normal'), { url, WebSocket });
    h.close();
    const end = await h.done;
    t.match(end, { status: 'CLOSED', closedByClient: true, tasks: 0 });
  });

  t.test('a second frame gets E_SESSION_REUSED as a notice, the search goes on', async (t) => {
    const notices: Frame[] = [];
    const h = search(demoRequest('normal'), {
      url,
      WebSocket,
      onSent: (handle) => handle.socket.send(JSON.stringify(demoRequest('normal'))),
      onNotice: (f) => notices.push(f),
    });
    const end = await h.done;
    t.match(notices, [{ _task: 'SESSION', _status: 'ERROR', _error: 'E_SESSION_REUSED' }]);
    t.match(end, { status: 'SUCCESS', items: 9 });
  });

  t.test('a throwing callback does not stop the tracking', async (t) => {
    const errors: unknown[] = [];
    const orig = console.error;
    console.error = (...args: unknown[]) => errors.push(args);
    t.teardown(() => void (console.error = orig));
    const end = await search(demoRequest('normal'), {
      url,
      WebSocket,
      onItem: () => {
        throw new Error('page bug');
      },
    }).done;
    t.match(end, { status: 'SUCCESS', items: 9 });
    t.equal(errors.length, 9);
  });

  t.test('echo through script.php', async (t) => {
    const res = await echo({ echo: 'xyz' }, { url: `${srv.wsBase}/echo`, WebSocket });
    t.match(res, { ok: true, closeCode: 1000 });
    t.same(res.answer, { aggregator: { php: { echo: 'xyz' } } });
    const empty = await echo({}, { url: `${srv.wsBase}/echo`, WebSocket });
    t.same(empty.answer, { aggregator: { php: {} } });
  });
});
