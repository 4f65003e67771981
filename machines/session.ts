// One search on one WebSocket (docs/protocol.md): awaiting-request → searching (fetching
// suppliers → fetching items) → done, or rejected / request-timed-out / failed / timed-out /
// closed / shut-down.
// The machine decides every frame, its order, and what happens to every task, and does none of
// it itself:
// - frames and the close are emitted events (`frame`, `items`, `close`) that src/session.ts
//   writes to the socket;
// - tasks are orders to the task host (`tasks`, provided by src/task-host.ts), the one actor
//   that holds this session's task actors and reports TASK_STARTED / TASK_DONE back. It is
//   invoked for the whole session, so the STOP orders of a final state reach it before XState
//   stops it (and with it every task) as the session completes.
import { type ActorRefFrom, assign, emit, enqueueActions, fromCallback, setup } from 'xstate';
import type { SuppliersInput } from '../src/config-types.js';
import { type ErrorCode, NORMAL_CLOSE, closeCodeFor } from '../src/errors.js';
import { type Frame, type TaskKind, type TaskMeta, sessionFrame, taskFrame } from '../src/frames.js';
import type { JsonObject } from '../src/json.js';
import { supplierClass } from '../src/stats.js';
import { suppliersStdin } from '../src/translate.js';
import type { TaskResult } from './task.js';

/** The session actor's systemId: its task host finds it by this name. */
export const SESSION_SYSTEM_ID = 'session';

export interface SessionInput {
  readonly session: string;
  readonly sessionTimeoutMs: number;
  /** aggregator.timeout.request: how long a new socket may take to send its request. */
  readonly requestTimeoutMs: number;
  /** aggregator.limit.tasks: tasks one session may create. */
  readonly taskLimit: number;
  /** aggregator.fields.info */
  readonly infoField: string;
  /** aggregator.script.suppliers-input: the request as it is, or wrapped as {"params": …}. */
  readonly suppliersInput: SuppliersInput;
}

/** An unfinished task, as the frames need it. */
export interface OpenTask extends TaskMeta {
  readonly status: 'queued' | 'running';
}

export interface SessionContext extends SessionInput {
  request?: JsonObject;
  /** Request fields echoed as `_params` on errors (aggregator.fields.faulty). */
  params?: JsonObject;
  error?: ErrorCode;
  /**
   * Unfinished tasks by id, changed in place (inside assign actions only): a search may hold up
   * to aggregator.limit.tasks of them, and a copy per event would make such a search quadratic
   * (10,000 tasks: 50 million entry copies).
   */
  readonly open: Map<number, OpenTask>;
  /** Tasks created so far, refused ones included (against aggregator.limit.tasks). */
  created: number;
}

/** A task the host is to run. */
export interface TaskOrder {
  readonly id: number;
  readonly kind: TaskKind;
  readonly stdin: string;
  /** The supplier's `class`, for the per-supplier metrics. */
  readonly supplier?: string;
}

/** What the machine tells its task host. */
export type HostOrder =
  | { type: 'QUEUE'; tasks: TaskOrder[] }
  /** Over aggregator.limit.tasks: never run, ended at once with E_SCRIPT_CANCELLED. */
  | { type: 'REFUSE'; tasks: Omit<TaskOrder, 'stdin'>[] }
  /** The session ends them: queued ones are dropped, running ones killed. */
  | { type: 'STOP'; tasks: { id: number; code: ErrorCode }[] };

/** What the task host tells the machine. `childIds` name the tasks a result's suppliers become. */
export type TaskReport = { type: 'TASK_STARTED'; id: number } | { type: 'TASK_DONE'; id: number; result: TaskResult; childIds: number[] };

export type SessionEvent =
  | { type: 'REQUEST'; request: JsonObject; params: JsonObject; taskId: number }
  | { type: 'BAD_REQUEST'; code: ErrorCode; params?: JsonObject }
  | { type: 'CLOSED' }
  | { type: 'SHUTDOWN' }
  | TaskReport;

/** The machine's effects, for whoever holds the socket. */
export type SessionEffect =
  | { type: 'frame'; frame: Frame }
  | { type: 'items'; task: TaskMeta; items: JsonObject[]; bytes: number }
  | { type: 'close'; code: number; reason: string };

function errorOf(context: SessionContext, code: ErrorCode) {
  return context.params ? { code, params: context.params } : { code };
}

function infoOf(supplier: JsonObject, field: string): TaskMeta['info'] {
  if (!Object.prototype.hasOwnProperty.call(supplier, field)) return undefined;
  const value = supplier[field];
  return value === undefined ? undefined : { value };
}

interface NewTask {
  meta: TaskMeta;
  order: TaskOrder;
}

/** The tasks an event creates: the SUPPLIERS task of a request, or an ITEMS task per supplier of a result. */
function newTasks(context: SessionContext, event: SessionEvent): NewTask[] {
  const { session } = context;
  if (event.type === 'REQUEST') {
    const stdin = suppliersStdin(event.request, context.suppliersInput);
    const meta: TaskMeta = { session, id: event.taskId, kind: 'SUPPLIERS' };
    return [{ meta, order: { id: event.taskId, kind: 'SUPPLIERS', stdin } }];
  }
  if (event.type !== 'TASK_DONE' || !event.result.ok) return [];
  const parentTask = context.open.get(event.id);
  // Analogs (an ITEMS task's suppliers) name their parent; the suppliers step's tasks do not.
  const parent = parentTask?.kind === 'ITEMS' ? parentTask.id : undefined;
  return event.result.suppliers.map((supplier, i) => {
    const id = event.childIds[i] ?? -1;
    const meta: TaskMeta = { session, id, kind: 'ITEMS', info: infoOf(supplier, context.infoField), parent };
    return { meta, order: { id, kind: 'ITEMS', stdin: JSON.stringify(supplier), supplier: supplierClass(supplier) } };
  });
}

const metaOf = ({ status: _, ...meta }: OpenTask): TaskMeta => meta;

export const sessionMachine = setup({
  types: {
    input: {} as SessionInput,
    context: {} as SessionContext,
    events: {} as SessionEvent,
    emitted: {} as SessionEffect,
  },
  actors: {
    // Provided by src/task-host.ts.
    taskHost: fromCallback<HostOrder, { session: string }, TaskReport>(() => {
      throw new Error('the task host must be provided');
    }),
  },
  actions: {
    keepRequest: assign({
      request: ({ event }) => (event.type === 'REQUEST' ? event.request : undefined),
      params: ({ event }) => (event.type === 'REQUEST' || event.type === 'BAD_REQUEST' ? event.params : undefined),
      error: ({ event }) => (event.type === 'BAD_REQUEST' ? event.code : undefined),
    }),
    setError: assign({ error: (_, p: { code: ErrorCode }) => p.code }),
    keepTaskError: assign({
      error: ({ event }) => (event.type === 'TASK_DONE' && !event.result.ok ? event.result.code : 'E_UNKNOWN'),
    }),
    sendReused: emit(({ context }) => ({ type: 'frame' as const, frame: sessionFrame(context.session, errorOf(context, 'E_SESSION_REUSED')) })),

    /** A request or a result created tasks: PENDING each (before the parent's end), then queued, or refused past the limit. */
    queueTasks: enqueueActions(({ context, event, enqueue }) => {
      const created = newTasks(context, event);
      if (created.length === 0) return;
      const room = Math.max(0, context.taskLimit - context.created);
      const queued = created.slice(0, room);
      const refused = created.slice(room);
      enqueue.assign({
        created: context.created + created.length,
        open: ({ context: c }) => {
          for (const t of queued) c.open.set(t.meta.id, { ...t.meta, status: 'queued' });
          return c.open;
        },
      });
      for (const t of queued) enqueue.emit({ type: 'frame', frame: taskFrame(t.meta, 'PENDING') });
      for (const t of refused) {
        enqueue.emit({ type: 'frame', frame: taskFrame(t.meta, 'PENDING') });
        enqueue.emit({ type: 'frame', frame: taskFrame(t.meta, 'ERROR', errorOf(context, 'E_SCRIPT_CANCELLED')) });
      }
      if (queued.length > 0) enqueue.sendTo('tasks', { type: 'QUEUE', tasks: queued.map((t) => t.order) } satisfies HostOrder);
      if (refused.length > 0) {
        const tasks = refused.map(({ order: { stdin: _, ...rest } }) => rest);
        enqueue.sendTo('tasks', { type: 'REFUSE', tasks } satisfies HostOrder);
      }
    }),

    markRunning: assign({
      open: ({ context, event }) => {
        const task = event.type === 'TASK_STARTED' ? context.open.get(event.id) : undefined;
        if (task) context.open.set(task.id, { ...task, status: 'running' });
        return context.open;
      },
    }),

    /** A task's items, in the script's order (the first of the three steps of a task's end). */
    sendItems: enqueueActions(({ context, event, enqueue }) => {
      const task = event.type === 'TASK_DONE' ? context.open.get(event.id) : undefined;
      if (!task || event.type !== 'TASK_DONE' || !event.result.ok || event.result.items.length === 0) return;
      enqueue.emit({ type: 'items', task: metaOf(task), items: event.result.items, bytes: event.result.bytes });
    }),

    /** A task ended by itself: its terminal frame (after its items and its children's PENDING frames). */
    endTask: enqueueActions(({ context, event, enqueue }) => {
      const task = event.type === 'TASK_DONE' ? context.open.get(event.id) : undefined;
      if (!task || event.type !== 'TASK_DONE') return;
      const meta = metaOf(task);
      const { result } = event;
      enqueue.assign({
        open: ({ context: c }) => {
          c.open.delete(task.id);
          return c.open;
        },
      });
      const end = result.ok ? taskFrame(meta, 'SUCCESS', undefined, result.cached === true) : taskFrame(meta, 'ERROR', errorOf(context, result.code));
      enqueue.emit({ type: 'frame', frame: end });
    }),

    /** The session ends every unfinished task: queued ones are cancelled, running ones get the session's error. */
    endOpenTasks: enqueueActions(({ context, enqueue }) => {
      const open = [...context.open.values()];
      // The order of docs/protocol.md: the queued tasks are removed (E_SCRIPT_CANCELLED), then the running ones killed.
      const ordered = [...open.filter((t) => t.status === 'queued'), ...open.filter((t) => t.status === 'running')];
      const stops = ordered.map((t) => ({ id: t.id, code: t.status === 'running' ? (context.error ?? 'E_UNKNOWN') : ('E_SCRIPT_CANCELLED' as ErrorCode) }));
      if (stops.length > 0) enqueue.sendTo('tasks', { type: 'STOP', tasks: stops } satisfies HostOrder);
      ordered.forEach((task, i) => {
        const code = stops[i]?.code ?? 'E_UNKNOWN';
        enqueue.emit({ type: 'frame', frame: taskFrame(metaOf(task), 'ERROR', errorOf(context, code)) });
      });
      enqueue.assign({
        open: ({ context: c }) => {
          c.open.clear();
          return c.open;
        },
      });
    }),

    /** The last frame: SUCCESS, or ERROR with the session's error code. */
    sendSessionEnd: emit(({ context }) => ({
      type: 'frame' as const,
      frame: context.error ? sessionFrame(context.session, errorOf(context, context.error)) : sessionFrame(context.session),
    })),
    /** A search that ran to its end: close 1000, the reason names its error if it failed (docs/protocol.md). */
    closeNormally: emit(({ context }) => ({ type: 'close' as const, code: NORMAL_CLOSE, reason: context.error ?? '' })),
    /** A search cut short: the close code of its error (docs/errors.md). */
    close: emit(({ context }) => ({
      type: 'close' as const,
      code: context.error ? closeCodeFor(context.error) : NORMAL_CLOSE,
      reason: context.error ?? '',
    })),
  },
  guards: {
    taskSucceeded: ({ event }) => event.type === 'TASK_DONE' && event.result.ok,
    isOpenTask: ({ context, event }) => event.type === 'TASK_DONE' && context.open.has(event.id),
    noOpenTasks: ({ context }) => context.open.size === 0,
  },
  delays: {
    sessionTimeout: ({ context }) => context.sessionTimeoutMs,
    requestTimeout: ({ context }) => context.requestTimeoutMs,
  },
}).createMachine({
  id: 'session',
  context: ({ input }) => ({ ...input, open: new Map(), created: 0 }),
  invoke: { id: 'tasks', src: 'taskHost', input: ({ context }) => ({ session: context.session }) },
  initial: 'awaitingRequest',
  on: {
    CLOSED: '.closed',
    SHUTDOWN: '.shutDown',
  },
  states: {
    awaitingRequest: {
      after: { requestTimeout: 'requestTimedOut' },
      on: {
        REQUEST: { target: 'searching', actions: ['keepRequest', 'queueTasks'] },
        BAD_REQUEST: { target: 'rejected', actions: 'keepRequest' },
      },
    },
    searching: {
      initial: 'fetchingSuppliers',
      after: { sessionTimeout: 'timedOut' },
      on: {
        REQUEST: { actions: 'sendReused' },
        BAD_REQUEST: { actions: 'sendReused' },
        TASK_STARTED: { actions: 'markRunning' },
      },
      states: {
        fetchingSuppliers: {
          on: {
            TASK_DONE: [
              { guard: 'taskSucceeded', target: 'fetchingItems', actions: ['queueTasks', 'endTask'] },
              { guard: 'isOpenTask', target: '#session.failed', actions: ['keepTaskError', 'endTask'] },
            ],
          },
        },
        fetchingItems: {
          always: { guard: 'noOpenTasks', target: '#session.done' },
          on: {
            // Its items, its children's PENDING frames, then its own end.
            TASK_DONE: { guard: 'isOpenTask', actions: ['sendItems', 'queueTasks', 'endTask'] },
          },
        },
      },
    },
    done: { type: 'final', entry: ['sendSessionEnd', 'closeNormally'] },
    failed: { type: 'final', entry: ['sendSessionEnd', 'closeNormally'] },
    rejected: { type: 'final', entry: ['sendSessionEnd', 'close'] },
    // A socket that never sent its request: an idle connection never holds a session slot for long.
    requestTimedOut: {
      type: 'final',
      entry: [{ type: 'setError', params: { code: 'E_SESSION_TIMEOUT' } }, 'sendSessionEnd', 'close'],
    },
    timedOut: {
      type: 'final',
      entry: [{ type: 'setError', params: { code: 'E_SESSION_TIMEOUT' } }, 'endOpenTasks', 'sendSessionEnd', 'close'],
    },
    shutDown: {
      type: 'final',
      entry: [{ type: 'setError', params: { code: 'E_SERVER_SHUTDOWN' } }, 'endOpenTasks', 'sendSessionEnd', 'close'],
    },
    // The browser is gone: nothing reaches it, but every task still ends.
    closed: {
      type: 'final',
      entry: [{ type: 'setError', params: { code: 'E_SESSION_CLOSED' } }, 'endOpenTasks'],
    },
  },
});

export type SessionLogic = typeof sessionMachine;
export type SessionActor = ActorRefFrom<typeof sessionMachine>;
export type SessionStateValue = ReturnType<SessionActor['getSnapshot']>['value'];
