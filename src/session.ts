// Binds one WebSocket to one session machine: socket messages become machine events, and the
// machine's effects (frames, items, the close) go to the socket through the session's outbox.
import type { WebSocket } from 'ws';
import { type SessionActor, type SessionEffect, type SessionInput, type SessionLogic, SESSION_SYSTEM_ID } from '../machines/session.js';
import { createActor } from 'xstate';
import type { Config } from './config-types.js';
import { ERRORS } from './errors.js';
import type { JsonObject } from './json.js';
import type { Logger } from './logger.js';
import { Outbox } from './outbox.js';
import type { Stats } from './stats.js';
import { parseRequest } from './translate.js';

export interface SessionDeps {
  readonly config: Config;
  readonly stats: Stats;
  readonly log: Logger;
  /** The session machine with this app's task host (machines/session.ts + src/task-host.ts). */
  readonly logic: SessionLogic;
  readonly nextTaskId: () => number;
  readonly sessions: Map<string, SessionActor>;
}

/** A session actor: its task host finds it by its systemId. */
export function createSession(logic: SessionLogic, input: SessionInput): SessionActor {
  return createActor(logic, { id: `session-${input.session}`, systemId: SESSION_SYSTEM_ID, input });
}

export function sessionInput(session: string, config: Config): SessionInput {
  return {
    session,
    sessionTimeoutMs: config.timeout.sessionMs,
    requestTimeoutMs: config.timeout.requestMs,
    taskLimit: config.limit.tasks,
    infoField: config.fields.info,
    suppliersInput: config.script.suppliersInput,
  };
}

let sessionSeq = 0;

export function openSession(socket: WebSocket, deps: SessionDeps): SessionActor {
  const session = String(++sessionSeq);
  // Made when the session first logs (at its end, at INFO): a child logger costs about 1 KB,
  // and 10,000 searches may wait at once.
  let sessionLog: Logger | undefined;
  const log = () => (sessionLog ??= deps.log.child({ session }));
  const { config, stats } = deps;
  // Cut off for not reading: the search may still reach `done` in the same step (its last
  // frames went nowhere), but for the counters and the log the browser is gone.
  let cutOff = false;
  const outbox = new Outbox(socket, {
    sendBufferBytes: config.limit.sendBufferBytes,
    onOverflow: ({ buffered, waiting }) => {
      cutOff = true;
      log().warn({ buffered, waiting, limit: config.limit.sendBufferBytes }, 'send buffer over limit: closing session');
      socket.terminate();
      actor.send({ type: 'CLOSED' });
    },
  });

  const actor = createSession(deps.logic, sessionInput(session, config));
  // A bug in the machine or in an effect: never leave the socket, the scripts or the counters
  // hanging. The browser gets 1011 E_UNKNOWN; the session's task host stops its tasks, on its
  // own when the machine fails, or as the session is stopped when an effect failed.
  let failure: unknown;
  const fail = (err: unknown) => {
    if (failure !== undefined) return;
    failure = err ?? new Error('unknown failure');
    log().error({ err }, 'session failed');
    outbox.discard();
    if (socket.readyState === socket.OPEN) socket.close(ERRORS.E_UNKNOWN.close, 'E_UNKNOWN');
  };
  // xstate reports a throwing listener as an uncaught exception; a session must not take the
  // server down, so each effect is guarded here.
  const effect =
    <E>(fn: (e: E) => void) =>
    (e: E) => {
      try {
        fn(e);
      } catch (err) {
        fail(err);
        actor.stop();
      }
    };
  // One listener for the three effects (one set of listeners per session, not three).
  actor.on(
    '*',
    effect((e: SessionEffect) => {
      if (e.type === 'frame') outbox.frame(e.frame);
      else if (e.type === 'items') {
        stats.items(e.items.length);
        outbox.items(e.task, e.items, e.bytes);
      } else outbox.close(e.code, e.reason);
    }),
  );

  stats.sessionOpened();
  deps.sessions.set(session, actor);
  const started = performance.now();
  // The request's faulty fields (aggregator.fields.faulty), for the log line at the end.
  let request: JsonObject | undefined;
  let requestedAt: number | undefined;
  const end = () => {
    deps.sessions.delete(session);
    // The search's deadline covers its delivery too: a browser that has not taken its frames and
    // answered the close by then (it stopped reading) loses the connection.
    const left = requestedAt === undefined ? 0 : config.timeout.sessionMs - (performance.now() - requestedAt);
    outbox.expireIn(Math.max(left, config.timeout.killMs), () => {
      log().warn('the browser did not take the last frames (or answer the close) by the session deadline: connection dropped');
      socket.terminate();
    });
    const snap = actor.getSnapshot();
    const error = failure !== undefined ? 'E_UNKNOWN' : cutOff ? 'E_SESSION_CLOSED' : snap.context.error;
    stats.sessionEnded(error);
    // One INFO line per search (each line costs the server about 0.1 ms under load).
    log().info({ request: request && { ...request }, state: snap.value, error, ms: Math.round(performance.now() - started) }, 'session ended');
  };
  actor.subscribe({
    complete: end,
    error: (err) => {
      fail(err);
      end();
    },
  });

  // Listeners are attached before any await, so no frame is missed.
  socket.on('message', (data, isBinary) => {
    try {
      if (isBinary) {
        actor.send({ type: 'BAD_REQUEST', code: 'E_REQUEST_JSON' });
        return;
      }
      const res = parseRequest(String(data), config.fields);
      if (res.ok) {
        request = res.params;
        requestedAt ??= performance.now();
        if (deps.log.isLevelEnabled('debug')) log().debug({ request: { ...res.params } }, 'search request');
        actor.send({ type: 'REQUEST', request: res.request, params: res.params, taskId: deps.nextTaskId() });
      } else {
        actor.send(res.params ? { type: 'BAD_REQUEST', code: res.code, params: res.params } : { type: 'BAD_REQUEST', code: res.code });
      }
    } catch (err) {
      log().error({ err }, 'message handling failed');
    }
  });
  socket.on('close', (code) => {
    if (!outbox.gone) log().info({ code }, 'browser closed the socket');
    outbox.discard();
    actor.send({ type: 'CLOSED' });
  });
  socket.on('error', (err) => log().warn({ err: err.message }, 'socket error'));

  actor.start();
  return actor;
}
