// src/session.ts with a real WebSocket pair and a fake script runner: what it does when its own
// machine fails (a bug): the browser gets 1011 E_UNKNOWN, the tasks are stopped (by the task
// host, which watches its session), and no counter of /stats is left open.
import http from 'node:http';
import pino from 'pino';
import t from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import { type SessionActor, sessionMachine } from '../machines/session.js';
import { parseCommand } from '../src/command.js';
import { loadConfig } from '../src/config.js';
import { Pool } from '../src/pool.js';
import type { RunOptions, RunResult } from '../src/processes/protocol.js';
import { openSession } from '../src/session.js';
import { createItemsCache } from '../src/cache/items-cache.js';
import { Stats } from '../src/stats.js';
import { TaskBoard, taskHost } from '../src/task-host.js';
import { waitFor } from './helpers/harness.js';

t.test('the session machine fails mid-search: 1011 E_UNKNOWN, tasks stopped, counters closed', async (t) => {
  const { config } = loadConfig({ argv: [], env: {}, cwd: '/nonexistent' });
  const pool = new Pool(1, 'fair');
  const stats = new Stats(pool);
  const sessions = new Map<string, SessionActor>();
  const aborted: string[] = [];
  // Suppliers answer at once with three suppliers; items scripts never end unless aborted.
  const run = (o: RunOptions): Promise<RunResult> =>
    o.input.includes('"apikey"')
      ? Promise.resolve({ ok: true, stdout: JSON.stringify({ suppliers: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] }), pid: 1, durationMs: 1 })
      : new Promise((resolve) =>
          o.signal?.addEventListener('abort', () => {
            aborted.push(o.input);
            resolve({ ok: false, code: 'E_SCRIPT_ERROR', reason: 'cancelled', cancelled: true, durationMs: 1 });
          }),
        );

  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    wss.close();
    server.close();
  });
  let taskSeq = 0;
  wss.on('connection', (socket) => {
    // The bug: sending E_SESSION_REUSED (the browser's second request) throws inside an action.
    const send = socket.send.bind(socket);
    socket.send = ((data: string) => {
      if (data.includes('E_SESSION_REUSED')) throw new Error('a bug in an effect');
      send(data);
    }) as typeof socket.send;
    const log = pino({ level: 'silent' });
    const nextTaskId = () => ++taskSeq;
    const commands = { suppliers: parseCommand('suppliers'), items: parseCommand('items') };
    const logic = sessionMachine.provide({
      actors: { taskHost: taskHost({ config, pool, stats, run, commands, log, nextTaskId, board: new TaskBoard(), cache: createItemsCache({}, log) }) },
    });
    openSession(socket, { config, stats, sessions, log, logic, nextTaskId });
  });
  const { port } = server.address() as { port: number };
  const client = new WebSocket(`ws://127.0.0.1:${port}/`);
  const frames: Record<string, unknown>[] = [];
  client.on('message', (d) => frames.push(JSON.parse(String(d)) as Record<string, unknown>));
  const closed = new Promise<{ code: number; reason: string }>((r) => client.on('close', (code, reason) => r({ code, reason: String(reason) })));
  await new Promise((r) => client.on('open', r));
  const request = JSON.stringify({ code: '3310', brand: 'ctr', apikey: 'k', analog: 0 });
  client.send(request);
  // Pool of 1: one items script runs, two wait; then the failing frame.
  t.ok(await waitFor(() => stats.taskRunning === 1 && stats.taskPending === 3, 2000), 'one items script runs, two wait');
  client.send(request);

  const close = await closed;
  t.same(close, { code: 1011, reason: 'E_UNKNOWN' }, 'the browser is told');
  t.ok(frames.some((f) => f._task === 'ITEMS' && f._status === 'PENDING'), 'the search had got as far as the items tasks');
  t.ok(await waitFor(() => sessions.size === 0 && pool.busy === 0, 2000), 'the session and its pool slot are gone');
  t.equal(aborted.length, 1, 'the running items script was stopped (the queued ones never ran)');
  const s = stats.toJSON();
  t.match(s, { sessionAlive: 0, taskPending: 0, taskRunning: 0 }, 'no counter left open');
  t.equal(s.taskTotal, s.taskSucceeded + s.taskFailed, 'every task counted as ended');
});
