// Binds one WebSocket to one session machine: provides the machine's effects (frames on the
// socket, close, stats) and its script actor, and turns socket events into machine events.
import { type Actor, createActor } from 'xstate';
import type { WebSocket } from 'ws';
import { type SessionActor, sessionMachine } from '../machines/session.js';
import { type TaskInput, taskMachine } from '../machines/task.js';
import type { ErrorCode } from './errors.js';
import { type Frame, itemFrameText } from './frames.js';
import type { Logger } from './logger.js';
import { type ScriptDeps, scriptActor } from './script-actor.js';
import { parseRequest } from './translate.js';

export interface SessionDeps extends ScriptDeps {
  readonly log: Logger;
  readonly nextTaskId: () => number;
  readonly sessions: Map<string, SessionActor>;
}

let sessionSeq = 0;

export function openSession(socket: WebSocket, deps: SessionDeps): SessionActor {
  const session = String(++sessionSeq);
  const log = deps.log.child({ session });
  const { config, stats } = deps;
  const running = new Set<number>();
  let gone = false;

  const overflow = () => {
    // A browser that stops reading must not make us buffer without bound.
    gone = true;
    log.warn({ buffered: socket.bufferedAmount, limit: config.limit.sendBufferBytes }, 'send buffer over limit: closing session');
    socket.terminate();
    actor.send({ type: 'CLOSED' });
  };
  const sendText = (text: string) => {
    if (gone || socket.readyState !== socket.OPEN) return;
    socket.send(text);
    if (socket.bufferedAmount > config.limit.sendBufferBytes) overflow();
  };
  const account = (frame: Frame) => {
    if (frame._task === 'SESSION' || frame._id === undefined) return;
    if (frame._status === 'PENDING') stats.taskQueued();
    else if (frame._status === 'SUCCESS' || frame._status === 'ERROR') {
      stats.taskEnded(frame._task, running.delete(frame._id), frame._error as ErrorCode | undefined);
    }
  };

  // Tasks run as root actors beside the session rather than as its spawned children: xstate
  // copies a parent's children map on every spawn and stop, so a 2000-supplier search made the
  // session quadratic and blocked the event loop for seconds when it ended.
  const tasks = new Map<number, Actor<typeof taskMachine>>();
  const taskLogic = taskMachine.provide({
    actors: { script: scriptActor(deps, session, log) },
    actions: { report: (_, report) => actor.send(report) },
  });
  const stopTask = (id: number) => {
    const task = tasks.get(id);
    if (!task) return;
    tasks.delete(id);
    task.stop(); // a queued job leaves the pool, a running script's group is killed
  };
  const startTask = (input: TaskInput) => {
    const task = createActor(taskLogic, { id: `task-${input.id}`, input });
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

  const machine = sessionMachine.provide({
    actions: {
      send: (_, frame) => {
        account(frame);
        sendText(JSON.stringify(frame));
      },
      sendItems: (_, { task, items }) => {
        for (const item of items) sendText(itemFrameText(item, task));
        stats.items(items.length);
      },
      close: (_, { code, reason }) => {
        gone = true;
        if (socket.readyState === socket.OPEN) socket.close(code, reason);
      },
      taskStarted: (_, { id }) => {
        running.add(id);
        stats.taskStarted();
      },
      startTask: (_, input) => startTask(input),
      stopTask: (_, { id }) => stopTask(id),
    },
  });

  const actor: SessionActor = createActor(machine, {
    id: `session-${session}`,
    input: {
      session,
      sessionTimeoutMs: config.timeout.sessionMs,
      queueTimeoutMs: config.timeout.queueMs,
      taskLimit: config.limit.tasks,
      infoField: config.fields.info,
      nextTaskId: deps.nextTaskId,
    },
  });

  stats.sessionOpened();
  deps.sessions.set(session, actor);
  const started = performance.now();
  actor.subscribe({
    complete: () => {
      stopAllTasks();
      deps.sessions.delete(session);
      const snap = actor.getSnapshot();
      stats.sessionEnded(snap.context.error);
      log.info({ state: snap.value, error: snap.context.error, ms: Math.round(performance.now() - started) }, 'session ended');
    },
    error: (err) => {
      // A bug in the machine: never leave the socket, the scripts or the counters hanging.
      stopAllTasks();
      deps.sessions.delete(session);
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
        log.info({ request: { ...res.params } }, 'search request');
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
