// One search on one WebSocket (SPEC 3): awaiting-request → fetching-suppliers →
// fetching-items → done, or rejected / request-timed-out / failed / timed-out / closed / shut-down.
// The machine decides which frames are sent and in which order; the effects themselves
// (`send`, `sendItems`, `close`, `taskStarted`, `startTask`, `stopTask`) and the `task`
// actor's script are provided by src/.
import { type ActorRefFrom, assign, setup } from 'xstate';
import type { SuppliersInput } from '../src/config-types.js';
import type { ErrorCode } from '../src/errors.js';
import { type Frame, type TaskKind, type TaskMeta, sessionFrame, taskFrame } from '../src/frames.js';
import type { JsonObject } from '../src/json.js';
import { suppliersStdin } from '../src/translate.js';
import { type TaskInput, type TaskReport, type TaskResult, taskMachine } from './task.js';

export interface SessionInput {
  readonly session: string;
  readonly sessionTimeoutMs: number;
  readonly queueTimeoutMs: number;
/** aggregator.timeout.request: how long a new socket may stay silent before its request. */
  readonly requestTimeoutMs: number;
/** aggregator.script.suppliers-input: the request as it is, or as {"params": request}. */
  readonly suppliersInput: SuppliersInput;
/** aggregator.limit.tasks: tasks one session may create. */
  readonly taskLimit: number;
/** aggregator.fields.info */
  readonly infoField: string;
/** Task ids are unique in the process, so the counter lives outside the session. */
  readonly nextTaskId: () => number;
}

export interface TaskRecord extends TaskMeta {
  status: 'queued' | 'running';
}

export interface SessionContext extends SessionInput {
  request?: JsonObject;
/** Request fields echoed as `_params` on errors (aggregator.fields.faulty). */
  params?: JsonObject;
  error?: ErrorCode;
/** Unfinished tasks. Mutated in place: a search may hold thousands, and copying the map
   *  on every event would make a big search quadratic. */
  readonly open: Map<number, TaskRecord>;
  created: number;
}

export type SessionEvent =
  | { type: 'REQUEST'; request: JsonObject; params: JsonObject }
  | { type: 'BAD_REQUEST'; code: ErrorCode; params?: JsonObject }
  | { type: 'CLOSED' }
  | { type: 'SHUTDOWN' }
  | TaskReport;

type Spec = { kind: TaskKind; stdin: string; supplier?: JsonObject; parent?: number };

function errorOf(context: SessionContext, code: ErrorCode) {
  return context.params ? { code, params: context.params } : { code };
}

function infoOf(supplier: JsonObject | undefined, field: string): TaskMeta['info'] {
  if (!supplier || !Object.prototype.hasOwnProperty.call(supplier, field)) return undefined;
  const value = supplier[field];
  return value === undefined ? undefined : { value };
}

// Placeholder for a step implemented below (its effects must be declared first to be typed).
const step = (_args: unknown, _params: undefined): void => {};

const base = setup({
  types: {
    input: {} as SessionInput,
    context: {} as SessionContext,
    events: {} as SessionEvent,
  },
  actors: { task: taskMachine },
  actions: {
    // Effects, provided by src/session.ts.
    send: (_, _frame: Frame) => {},
    sendItems: (_, _p: { task: TaskMeta; items: JsonObject[] }) => {},
    close: (_, _p: { code: number; reason: string }) => {},
    taskStarted: (_, _p: { id: number }) => {},
    // Task actors. By default spawned children; src/session.ts runs them as root actors
    // instead, since xstate copies a parent's children map on every spawn and stop, which
    // makes a session of thousands of tasks quadratic.
    startTask: (_, _p: TaskInput) => {},
    stopTask: (_, _p: { id: number }) => {},

    keepRequest: assign({
      request: ({ event }) => (event.type === 'REQUEST' ? event.request : undefined),
      params: ({ event }) => (event.type === 'REQUEST' || event.type === 'BAD_REQUEST' ? event.params : undefined),
      error: ({ event }) => (event.type === 'BAD_REQUEST' ? event.code : undefined),
    }),
    setError: assign({ error: (_, p: { code: ErrorCode }) => p.code }),
    keepTaskError: assign({
      error: ({ event }) => (event.type === 'TASK_DONE' && !event.result.ok ? event.result.code : 'E_UNKNOWN'),
    }),
    // Steps built from the effects above; implemented below with the typed enqueueActions.
    markRunning: step,
    sendReused: step,
    spawnTasks: step,
    finishTask: step,
    endOpenTasks: step,
    sendSessionEnd: step,
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
});

const markRunning = base.enqueueActions(({ context, event, enqueue }) => {
  if (event.type !== 'TASK_STARTED') return;
  const task = context.open.get(event.id);
  if (!task || task.status === 'running') return;
  task.status = 'running';
  enqueue({ type: 'taskStarted', params: { id: task.id } });
});
const sendReused = base.enqueueActions(({ context, enqueue }) => {
  enqueue({ type: 'send', params: sessionFrame(context.session, errorOf(context, 'E_SESSION_REUSED')) });
});

/** Queues the tasks a finished step produced: PENDING each, before the parent's end. */
const spawnTasks = base.enqueueActions(({ context, event, enqueue }) => {
  const specs: Spec[] = [];
  if (event.type === 'REQUEST') specs.push({ kind: 'SUPPLIERS', stdin: suppliersStdin(event.request, context.suppliersInput) });
  if (event.type === 'TASK_DONE' && event.result.ok) {
    const parent = context.open.get(event.id);
    const nested = parent?.kind === 'ITEMS' ? parent.id : undefined;
    for (const supplier of event.result.suppliers)
      specs.push({ kind: 'ITEMS', stdin: JSON.stringify(supplier), supplier, parent: nested });
  }
  for (const spec of specs) {
    const id = context.nextTaskId();
    const task: TaskRecord = {
      session: context.session,
      id,
      kind: spec.kind,
      info: spec.kind === 'ITEMS' ? infoOf(spec.supplier, context.infoField) : undefined,
      parent: spec.parent,
      status: 'queued',
    };
    enqueue({ type: 'send', params: taskFrame(task, 'PENDING') });
    context.created++;
    if (context.created > context.taskLimit) {
      enqueue({ type: 'send', params: taskFrame(task, 'ERROR', errorOf(context, 'E_SCRIPT_CANCELLED')) });
      continue;
    }
    context.open.set(id, task);
    enqueue({ type: 'startTask', params: { id, kind: spec.kind, stdin: spec.stdin, queueTimeoutMs: context.queueTimeoutMs } });
  }
});

/** A task ended: its items, its children's PENDING frames, then its own terminal frame. */
const finishTask = base.enqueueActions(({ context, event, enqueue }) => {
  if (event.type !== 'TASK_DONE') return;
  const task = context.open.get(event.id);
  if (!task) return;
  const result: TaskResult = event.result;
  if (result.ok && result.items.length > 0) enqueue({ type: 'sendItems', params: { task, items: result.items } });
  if (result.ok) enqueue('spawnTasks');
  enqueue(({ context: c }) => void c.open.delete(task.id));
  enqueue({ type: 'stopTask', params: { id: task.id } });
  enqueue({
    type: 'send',
    params: result.ok ? taskFrame(task, 'SUCCESS') : taskFrame(task, 'ERROR', errorOf(context, result.code)),
  });
});

/** Ends every unfinished task: queued ones were cancelled, running ones get the session's error. */
const endOpenTasks = base.enqueueActions(({ context, enqueue }) => {
  const open = [...context.open.values()];
  // SPEC 3.6 order: the queued tasks are removed (E_SCRIPT_CANCELLED), then the running ones killed.
  const ordered = [...open.filter((t) => t.status === 'queued'), ...open.filter((t) => t.status === 'running')];
  for (const task of ordered) {
    enqueue({ type: 'stopTask', params: { id: task.id } });
    const code = task.status === 'running' ? (context.error ?? 'E_UNKNOWN') : 'E_SCRIPT_CANCELLED';
    enqueue({ type: 'send', params: taskFrame(task, 'ERROR', errorOf(context, code)) });
  }
  context.open.clear();
});
/** The last frame: SUCCESS, or ERROR with the session's error code. */
const sendSessionEnd = base.enqueueActions(({ context, enqueue }) => {
  const frame = context.error ? sessionFrame(context.session, errorOf(context, context.error)) : sessionFrame(context.session);
  enqueue({ type: 'send', params: frame });
});

const chart = base.createMachine({
  id: 'session',
  context: ({ input }) => ({ ...input, open: new Map(), created: 0 }),
  initial: 'awaitingRequest',
  on: {
    CLOSED: '.closed',
    SHUTDOWN: '.shutDown',
  },
  states: {
    awaitingRequest: {
      // A silent socket must not hold a slot of aggregator.limit.sessions for long.
      after: { requestTimeout: 'requestTimedOut' },
      on: {
        REQUEST: { target: 'searching', actions: ['keepRequest', 'spawnTasks'] },
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
              { guard: 'taskSucceeded', target: 'fetchingItems', actions: 'finishTask' },
              { guard: 'isOpenTask', target: '#session.failed', actions: ['keepTaskError', 'finishTask'] },
            ],
          },
        },
        fetchingItems: {
          always: { guard: 'noOpenTasks', target: '#session.done' },
          on: {
            TASK_DONE: { actions: 'finishTask' },
          },
        },
      },
    },
    done: {
      type: 'final',
      entry: ['sendSessionEnd', { type: 'close', params: { code: 1000, reason: '' } }],
    },
    failed: {
      type: 'final',
      entry: ['sendSessionEnd', { type: 'close', params: ({ context }) => ({ code: 1000, reason: context.error ?? '' }) }],
    },
    rejected: {
      type: 'final',
      entry: ['sendSessionEnd', { type: 'close', params: ({ context }) => ({ code: 4400, reason: context.error ?? '' }) }],
    },
    timedOut: {
      type: 'final',
      entry: [
        { type: 'setError', params: { code: 'E_SESSION_TIMEOUT' } },
        'endOpenTasks',
        'sendSessionEnd',
        { type: 'close', params: { code: 4408, reason: 'E_SESSION_TIMEOUT' } },
      ],
    },
    // No request came: nothing was started, so only the SESSION frame and the close.
    requestTimedOut: {
      type: 'final',
      entry: [
        { type: 'setError', params: { code: 'E_SESSION_TIMEOUT' } },
        'sendSessionEnd',
        { type: 'close', params: { code: 4408, reason: 'E_SESSION_TIMEOUT' } },
      ],
    },
    shutDown: {
      type: 'final',
      entry: [
        { type: 'setError', params: { code: 'E_SERVER_SHUTDOWN' } },
        'endOpenTasks',
        'sendSessionEnd',
        { type: 'close', params: { code: 1001, reason: 'E_SERVER_SHUTDOWN' } },
      ],
    },
    // The browser is gone: nothing reaches it, but every task still ends (for /stats).
    closed: {
      type: 'final',
      entry: [{ type: 'setError', params: { code: 'E_SESSION_CLOSED' } }, 'endOpenTasks'],
    },
  },
});

// Default task effects: each task a spawned child of the session (src/session.ts overrides
// them). setup's enqueueActions types params as undefined, hence the casts; xstate passes them.
const startTask = base.enqueueActions(({ enqueue }, params) => {
  const input = params as unknown as TaskInput;
  enqueue.spawnChild('task', { id: `task-${input.id}`, input });
}) as unknown as (_: unknown, input: TaskInput) => void;
const stopTask = base.enqueueActions(({ enqueue }, params) => {
  enqueue.stopChild(`task-${(params as unknown as { id: number }).id}`);
}) as unknown as (_: unknown, p: { id: number }) => void;

export const sessionMachine = chart.provide({
  actions: { markRunning, sendReused, spawnTasks, finishTask, endOpenTasks, sendSessionEnd, startTask, stopTask },
});

export type SessionActor = ActorRefFrom<typeof sessionMachine>;
export type SessionStateValue = ReturnType<SessionActor['getSnapshot']>['value'];
