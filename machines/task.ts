// One script task: queued in the shared pool → running → succeeded / failed, or cancelled
// while still queued (aggregator.timeout.queue). The `script` actor is provided by src/: it
// waits for a pool slot, runs the script and translates its stdout. Stopping this machine
// stops that actor, which drops the queued job or kills the running process group.
// Reports go through the `report` action: by default to the parent (a spawned child);
// src/session.ts runs tasks as their own root actors and provides it.
import { assign, fromCallback, sendParent, setup } from 'xstate';
import type { ErrorCode } from '../src/errors.js';
import type { TaskKind } from '../src/frames.js';
import type { JsonObject } from '../src/json.js';

export type TaskResult = { ok: true; items: JsonObject[]; suppliers: JsonObject[] } | { ok: false; code: ErrorCode };

export interface TaskInput {
  readonly id: number;
  readonly kind: TaskKind;
  readonly stdin: string;
  /** 0 = a queued task waits as long as the session lets it. */
  readonly queueTimeoutMs: number;
}

export type ScriptEvent = { type: 'STARTED'; pid?: number } | { type: 'FINISHED'; result: TaskResult };

/** Events a task sends to its session. */
export type TaskReport = { type: 'TASK_STARTED'; id: number } | { type: 'TASK_DONE'; id: number; result: TaskResult };

// setTimeout can't take more than 2^31-1 ms; a disabled queue timeout never fires anyway.
const NEVER = 2 ** 31 - 1;

export const taskMachine = setup({
  types: {
    input: {} as TaskInput,
    context: {} as TaskInput & { result?: TaskResult },
    events: {} as ScriptEvent,
  },
  actors: {
    script: fromCallback<ScriptEvent, Pick<TaskInput, 'id' | 'kind' | 'stdin'>>(() => {
      throw new Error('the script actor must be provided');
    }),
  },
  delays: {
    queueTimeout: ({ context }) => (context.queueTimeoutMs > 0 ? context.queueTimeoutMs : NEVER),
  },
  guards: {
    queueTimeoutOn: ({ context }) => context.queueTimeoutMs > 0,
    scriptSucceeded: ({ event }) => event.type === 'FINISHED' && event.result.ok,
  },
  actions: {
    keepResult: assign({ result: ({ event }) => (event.type === 'FINISHED' ? event.result : undefined) }),
    report: sendParent((_, report: TaskReport) => report),
  },
}).createMachine({
  id: 'task',
  context: ({ input }) => ({ ...input }),
  invoke: {
    src: 'script',
    input: ({ context }) => ({ id: context.id, kind: context.kind, stdin: context.stdin }),
  },
  initial: 'queued',
  states: {
    queued: {
      on: {
        STARTED: 'running',
        // A script that could not start reports FINISHED without STARTED.
        FINISHED: [
          { guard: 'scriptSucceeded', target: 'succeeded', actions: 'keepResult' },
          { target: 'failed', actions: 'keepResult' },
        ],
      },
      after: { queueTimeout: { guard: 'queueTimeoutOn', target: 'cancelled' } },
    },
    running: {
      entry: { type: 'report', params: ({ context }): TaskReport => ({ type: 'TASK_STARTED', id: context.id }) },
      on: {
        FINISHED: [
          { guard: 'scriptSucceeded', target: 'succeeded', actions: 'keepResult' },
          { target: 'failed', actions: 'keepResult' },
        ],
      },
    },
    succeeded: {
      type: 'final',
      entry: { type: 'report', params: ({ context }): TaskReport => ({ type: 'TASK_DONE', id: context.id, result: context.result! }) },
    },
    failed: {
      type: 'final',
      entry: { type: 'report', params: ({ context }): TaskReport => ({ type: 'TASK_DONE', id: context.id, result: context.result! }) },
    },
    cancelled: {
      type: 'final',
      entry: {
        type: 'report',
        params: ({ context }): TaskReport => ({ type: 'TASK_DONE', id: context.id, result: { ok: false, code: 'E_SCRIPT_CANCELLED' } }),
      },
    },
  },
});
