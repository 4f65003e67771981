// One script task: queued in the shared pool → running → succeeded / failed, or cancelled
// while still queued (aggregator.timeout.queue), or stopped by its session. The `script` actor is provided by src/
// (src/script-actor.ts): it waits for a pool slot, runs the script and translates its stdout.
// The task's output is its result; whoever holds the task (src/task-host.ts) reads its state
// and output. Stopping the task stops that actor, which drops the queued job or kills the
// running process group.
import { assign, fromCallback, setup } from 'xstate';
import type { ErrorCode } from '../src/errors.js';
import type { TaskKind } from '../src/frames.js';
import type { JsonObject } from '../src/json.js';

export type TaskResult =
  | {
      ok: true;
      items: JsonObject[];
      suppliers: JsonObject[];
      /** Size of the script's answer (characters), from which the outbox estimates what its frames will take. */
      bytes: number;
      /** Answered from the items cache, not by a script run. */
      cached?: boolean;
      /** How long its script ran (none when answered from the cache), for the per-supplier metrics. */
      runMs?: number;
    }
  | { ok: false; code: ErrorCode; runMs?: number };

export interface ScriptInput {
  readonly session: string;
  readonly id: number;
  readonly kind: TaskKind;
  readonly stdin: string;
  /** The supplier's name (its `class`), for the per-supplier metrics; absent for SUPPLIERS. */
  readonly supplier?: string;
}

export interface TaskInput extends ScriptInput {
  /** 0 = a queued task waits as long as the session lets it. */
  readonly queueTimeoutMs: number;
}

export type ScriptEvent = { type: 'STARTED' } | { type: 'FINISHED'; result: TaskResult };
/** Its session ends the task (timeout, shutdown, browser gone): its script is dropped or killed. */
export type TaskEvent = ScriptEvent | { type: 'STOP' };

export type TaskState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'stopped';

// setTimeout can't take more than 2^31-1 ms; a disabled queue timeout never fires anyway.
const NEVER = 2 ** 31 - 1;
const CANCELLED: TaskResult = { ok: false, code: 'E_SCRIPT_CANCELLED' };

export const taskMachine = setup({
  types: {
    input: {} as TaskInput,
    context: {} as { input: TaskInput; result?: TaskResult },
    events: {} as TaskEvent,
    output: {} as TaskResult,
  },
  actors: {
    script: fromCallback<ScriptEvent, ScriptInput>(() => {
      throw new Error('the script actor must be provided');
    }),
  },
  delays: {
    queueTimeout: ({ context }) => (context.input.queueTimeoutMs > 0 ? context.input.queueTimeoutMs : NEVER),
  },
  guards: {
    queueTimeoutOn: ({ context }) => context.input.queueTimeoutMs > 0,
    scriptSucceeded: ({ event }) => event.type === 'FINISHED' && event.result.ok,
  },
  actions: {
    keepResult: assign({ result: ({ event }) => (event.type === 'FINISHED' ? event.result : undefined) }),
    keepCancelled: assign({ result: CANCELLED }),
  },
}).createMachine({
  id: 'task',
  context: ({ input }) => ({ input }),
  invoke: {
    id: 'script',
    src: 'script',
    input: ({ context }): ScriptInput => {
      const { queueTimeoutMs: _, ...script } = context.input;
      return script;
    },
  },
  initial: 'queued',
  output: ({ context }) => context.result ?? CANCELLED,
  // Leaving for a final state stops the script actor: a queued job leaves the pool, a running
  // script's process group is killed.
  on: { STOP: '.stopped' },
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
      after: { queueTimeout: { guard: 'queueTimeoutOn', target: 'cancelled', actions: 'keepCancelled' } },
    },
    running: {
      on: {
        FINISHED: [
          { guard: 'scriptSucceeded', target: 'succeeded', actions: 'keepResult' },
          { target: 'failed', actions: 'keepResult' },
        ],
      },
    },
    succeeded: { type: 'final' },
    failed: { type: 'final' },
    cancelled: { type: 'final' },
    stopped: { type: 'final' },
  },
});
