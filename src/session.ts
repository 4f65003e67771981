// Binds one WebSocket to one session machine: provides the machine's effects (frames on the
// socket, close, stats) and its script actor, and turns socket events into machine events.
import { type Actor, createActor } from 'xstate';
import type { WebSocket } from 'ws';
import { type SessionActor, sessionMachine } from '../machines/session.js';
import { type TaskInput, type TaskReport, taskMachine } from '../machines/task.js';
import type { ErrorCode } from './errors.js';
import { type Frame, type TaskKind, type TaskMeta, itemFrameText } from './frames.js';
import type { JsonObject } from './json.js';
import type { Logger } from './logger.js';
import { type ScriptDeps, type TaskHost, scriptActor } from './script-actor.js';
import { parseRequest } from './translate.js';

export interface SessionDeps extends ScriptDeps {
  readonly log: Logger;
  readonly nextTaskId: () => number;
  readonly sessions: Map<string, SessionActor>;
}

/** What one session's machine does to the world: its socket, the counters, its tasks. */
interface SessionEffects {
  send(frame: Frame): void;
  sendItems(task: TaskMeta, items: JsonObject[]): void;
  close(code: number, reason: string): void;
  taskStarted(id: number): void;
  startTask(input: TaskInput): void;
  stopTask(id: number): void;
}

// The machines are provided once, not per session: a provide()d machine has its own state
// nodes, which every session then carried (about 20 KB each, bench/04-sessions). Actions find
// their session through the actor (`self`); a task finds its session through its own system.
const effectsOf = new WeakMap<object, SessionEffects>();
const sessionLogic = sessionMachine.provide({
  actions: {
    send: ({ self }, frame) => effectsOf.get(self)?.send(frame),
    sendItems: ({ self }, { task, items }) => effectsOf.get(self)?.sendItems(task, items),
    close: ({ self }, { code, reason }) => effectsOf.get(self)?.close(code, reason),
    taskStarted: ({ self }, { id }) => effectsOf.get(self)?.taskStarted(id),
    startTask: ({ self }, input) => effectsOf.get(self)?.startTask(input),
    stopTask: ({ self }, { id }) => effectsOf.get(self)?.stopTask(id),
  },
});

interface TaskLink extends TaskHost {
  report(report: TaskReport): void;
}
const taskLinks = new WeakMap<object, TaskLink>();
// One task logic per app (its pool, config and scripts), found by the app's pool.
const taskLogics = new WeakMap<object, ReturnType<typeof provideTaskLogic>>();
function provideTaskLogic(deps: ScriptDeps) {
  return taskMachine.provide({
    actors: { script: scriptActor(deps, (system) => taskLinks.get(system)) },
    actions: { report: ({ system }, report) => taskLinks.get(system)?.report(report) },
  });
}
function taskLogicOf(deps: ScriptDeps) {
  let logic = taskLogics.get(deps.pool);
  if (!logic) taskLogics.set(deps.pool, (logic = provideTaskLogic(deps)));
  return logic;
}

let sessionSeq = 0;

export function openSession(socket: WebSocket, deps: SessionDeps): SessionActor {
  const session = String(++sessionSeq);
  const log = deps.log.child({ session });
  const { config, stats } = deps;
  const running = new Set<number>();
  // Tasks announced (PENDING) and not yet ended, with their kind: a failing machine closes them.
  const open = new Map<number, TaskKind>();
  let gone = false;
  // Cut off for not reading: the search may still reach `done` in the same step (its last
  // frames went nowhere), but for the counters and the log the browser is gone (SPEC 8).
  let cutOff = false;

  const overflow = () => {
    // A browser that stops reading must not make us buffer without bound.
    gone = true;
    cutOff = true;
    log.warn({ buffered: socket.bufferedAmount, limit: config.limit.sendBufferBytes }, 'send buffer over limit: closing session');
    socket.terminate();
    actor.send({ type: 'CLOSED' });
  };
  // The frames of one step (a task's items and its SUCCESS, a SESSION frame and the close)
  // leave in one writev, not one each: the TCP socket under the WebSocket is corked at the
  // first frame and uncorked when the tick ends, or after 64 frames (a writev takes at most
  // 1024 buffers at once; the rest would wait for the next turn of the loop). ws has no cork
  // of its own; without its `_socket`, frames go one by one.
  const tcp = (socket as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
  let corked = 0; // frames since corked, 0 = not corked
  let flushScheduled = false;
  const uncork = () => {
    if (corked === 0) return;
    corked = 0;
    tcp?.uncork();
  };
  const cork = () => {
    if (!tcp) return;
    if (corked > 0) {
      if (++corked > 64) {
        uncork();
        cork();
      }
      return;
    }
    corked = 1;
    tcp.cork();
    if (flushScheduled) return;
    flushScheduled = true;
    process.nextTick(() => {
      flushScheduled = false;
      uncork();
    });
  };
  const sendText = (text: string) => {
    if (gone || socket.readyState !== socket.OPEN) return;
    cork();
    socket.send(text);
    if (socket.bufferedAmount > config.limit.sendBufferBytes) overflow();
  };
  const account = (frame: Frame) => {
    if (frame._task === 'SESSION' || frame._id === undefined) return;
    if (frame._status === 'PENDING') {
      open.set(frame._id, frame._task);
      stats.taskQueued();
    } else if (frame._status === 'SUCCESS' || frame._status === 'ERROR') {
      if (!open.delete(frame._id)) return;
      stats.taskEnded(frame._task, running.delete(frame._id), frame._error as ErrorCode | undefined);
    }
  };

  // Tasks run as root actors beside the session rather than as its spawned children: xstate
  // copies a parent's children map on every spawn and stop, so a 2000-supplier search made the
  // session quadratic and blocked the event loop for seconds when it ended.
  const tasks = new Map<number, Actor<typeof taskMachine>>();
  const taskLogic = taskLogicOf(deps);
  const link: TaskLink = { session, log, report: (report) => actor.send(report) };
  const stopTask = (id: number) => {
    const task = tasks.get(id);
    if (!task) return;
    tasks.delete(id);
    task.stop(); // a queued job leaves the pool, a running script's group is killed
  };
  const startTask = (input: TaskInput) => {
    const task = createActor(taskLogic, { id: `task-${input.id}`, input });
    taskLinks.set(task.system, link);
    tasks.set(input.id, task);
    task.subscribe({
      error: (err) => {
        // A bug in the task machine: end the task rather than leave the search hanging.
        log.error({ err, task: input.id }, 'task machine failed');
        actor.send({ type: 'TASK_DONE', id: input.id, result: { ok: false, code: 'E_UNKNOWN' } });
      },
    });
    task.start();
  };
  const stopAllTasks = () => {
    for (const id of [...tasks.keys()]) stopTask(id);
  };

  const effects: SessionEffects = {
    send: (frame) => {
      account(frame);
      sendText(JSON.stringify(frame));
    },
    sendItems: (task, items) => {
      for (const item of items) {
        if (gone) break; // no need to serialise the rest of a million items for nobody
        sendText(itemFrameText(item, task));
      }
      stats.items(items.length);
    },
    close: (code, reason) => {
      gone = true;
      if (socket.readyState === socket.OPEN) socket.close(code, reason);
      // Out now: a shutdown terminates the sockets within this tick, corked bytes would be lost.
      uncork();
    },
    taskStarted: (id) => {
      running.add(id);
      stats.taskStarted();
    },
    startTask,
    stopTask,
  };

  const actor: SessionActor = createActor(sessionLogic, {
    id: `session-${session}`,
    input: {
      session,
      sessionTimeoutMs: config.timeout.sessionMs,
      queueTimeoutMs: config.timeout.queueMs,
      requestTimeoutMs: config.timeout.requestMs,
      suppliersInput: config.script.suppliersInput,
      taskLimit: config.limit.tasks,
      infoField: config.fields.info,
      nextTaskId: deps.nextTaskId,
    },
  });

  effectsOf.set(actor, effects);
  stats.sessionOpened();
  deps.sessions.set(session, actor);
  const started = performance.now();
  // The request's faulty fields (aggregator.fields.faulty), for the log line at the end.
  let request: JsonObject | undefined;
  actor.subscribe({
    complete: () => {
      stopAllTasks();
      deps.sessions.delete(session);
      const snap = actor.getSnapshot();
      const error = cutOff ? 'E_SESSION_CLOSED' : snap.context.error;
      stats.sessionEnded(error);
      // One INFO line per search (each line costs the server about 0.1 ms under load).
      log.info({ request: request && { ...request }, state: snap.value, error, ms: Math.round(performance.now() - started) }, 'session ended');
    },
    error: (err) => {
      // A bug in the machine: never leave the socket, the scripts or the counters hanging.
      stopAllTasks();
      deps.sessions.delete(session);
      for (const [id, kind] of open) stats.taskEnded(kind, running.delete(id), 'E_UNKNOWN');
      open.clear();
      stats.sessionEnded('E_UNKNOWN');
      log.error({ err }, 'session machine failed');
      if (socket.readyState === socket.OPEN) socket.close(1011, 'E_UNKNOWN');
    },
  });

  // Listeners are attached before any await, so no frame is missed (STACK-NOTES).
  socket.on('message', (data, isBinary) => {
    try {
      if (isBinary) {
        actor.send({ type: 'BAD_REQUEST', code: 'E_REQUEST_JSON' });
        return;
      }
      const res = parseRequest(String(data), config.fields);
      if (res.ok) {
        request = res.params;
        log.debug({ request: { ...res.params } }, 'search request');
        actor.send({ type: 'REQUEST', request: res.request, params: res.params });
      } else {
        actor.send(res.params ? { type: 'BAD_REQUEST', code: res.code, params: res.params } : { type: 'BAD_REQUEST', code: res.code });
      }
    } catch (err) {
      log.error({ err }, 'message handling failed');
    }
  });
  socket.on('close', (code) => {
    if (!gone) log.info({ code }, 'browser closed the socket');
    gone = true;
    actor.send({ type: 'CLOSED' });
  });
  socket.on('error', (err) => log.warn({ err: err.message }, 'socket error'));

  actor.start();
  return actor;
}
