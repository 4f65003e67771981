// The task host: the one actor of a session that holds its task actors (machines/task.ts). The
// session machine invokes it and orders QUEUE / REFUSE / STOP; the host starts, stops and
// watches the tasks and reports TASK_STARTED / TASK_DONE back. It is also where a task's life
// is counted for /stats and /metrics: when it is queued, starts and ends.
//
// The task actors are roots of their own, not spawned children of the session: xstate copies a
// parent's children map on every spawn and stop, so a 2000-supplier search made the session
// quadratic and blocked the event loop for seconds (docs/performance.md).
import { type Actor, createActor, fromCallback } from 'xstate';
import { type HostOrder, SESSION_SYSTEM_ID, type TaskOrder, type TaskReport } from '../machines/session.js';
import { type TaskResult, type TaskState, taskMachine } from '../machines/task.js';
import type { ErrorCode } from './errors.js';
import type { TaskKind } from './frames.js';
import type { Logger } from './logger.js';
import { type ScriptDeps, scriptActor } from './script-actor.js';
import { type Stats, supplierOutcome } from './stats.js';

export interface TaskHostDeps extends ScriptDeps {
  readonly stats: Stats;
  readonly log: Logger;
  /** Task ids, unique in the process. */
  readonly nextTaskId: () => number;
  /** Live task counts for /debug. */
  readonly board: TaskBoard;
}

/** How many tasks are in each state of the task machine right now, and how many ended in each. */
export class TaskBoard {
  readonly live: Record<'queued' | 'running', number> = { queued: 0, running: 0 };
  /** By final state of the task machine; `stopped`: ended by its session (timeout, shutdown, browser gone). */
  readonly ended: Record<'succeeded' | 'failed' | 'cancelled' | 'stopped', number> = { succeeded: 0, failed: 0, cancelled: 0, stopped: 0 };
}

interface LiveTask {
  /** Created once the task's turn to start comes (see ADMIT_SLICE). */
  actor?: Actor<typeof taskMachine>;
  readonly kind: TaskKind;
  /** The supplier's class (ITEMS tasks), for the per-supplier metrics. */
  readonly supplier: string | undefined;
  running: boolean;
}

/**
 * Task actors started per turn of the event loop. Making one costs 40-300 µs (xstate), so a
 * 2000-supplier answer made at once held the loop for up to 660 ms; in slices, /health and
 * every other session stay served (docs/performance.md). The tasks are counted as queued at
 * once, and start in their order.
 */
const ADMIT_SLICE = 64;

/** The host logic of an app (its pool, config and scripts); sessions differ only by input. */
export function taskHost(deps: TaskHostDeps) {
  const taskLogic = taskMachine.provide({ actors: { script: scriptActor(deps) } });
  const { stats, board } = deps;
  const queueTimeoutMs = deps.config.timeout.queueMs;

  return fromCallback<HostOrder, { session: string }, TaskReport>(({ input, sendBack, receive, system, self }) => {
    const { session } = input;
    const tasks = new Map<number, LiveTask>();

    /** Counts a task's end (once) and forgets it. */
    const ended = (id: number, outcome: keyof TaskBoard['ended'], code?: ErrorCode, runMs?: number) => {
      const task = tasks.get(id);
      if (!task) return undefined;
      tasks.delete(id);
      board.live[task.running ? 'running' : 'queued']--;
      board.ended[outcome]++;
      stats.taskEnded(task.kind, task.running, code);
      if (task.kind === 'ITEMS') stats.supplierTask(task.supplier, supplierOutcome(code), runMs);
      return task;
    };

    // Orders whose actor is not made yet, oldest first.
    const waiting: TaskOrder[] = [];
    let admitted = 0;
    let nextSlice: NodeJS.Immediate | undefined;

    const launch = (order: TaskOrder, task: LiveTask) => {
      // The host is its parent: the task shares the session's actor system (one per session,
      // not one per task: 10,000 waiting searches are 10,000 systems fewer) and is still no
      // child in any machine's snapshot (nothing is copied when tasks come and go).
      const actor = createActor(taskLogic, { input: { ...order, session, queueTimeoutMs }, parent: self });
      task.actor = actor;
      actor.subscribe({
        next: (snap) => {
          if (snap.value === 'running' && !task.running && tasks.has(order.id)) {
            task.running = true;
            board.live.queued--;
            board.live.running++;
            stats.taskStarted();
            sendBack({ type: 'TASK_STARTED', id: order.id });
          }
          if (snap.status !== 'done' || !snap.output) return;
          const result: TaskResult = snap.output;
          const state = snap.value as TaskState;
          const outcome = state === 'succeeded' ? 'succeeded' : state === 'cancelled' ? 'cancelled' : 'failed';
          if (!ended(order.id, outcome, result.ok ? undefined : result.code, result.runMs)) return;
          const childIds = result.ok ? result.suppliers.map(() => deps.nextTaskId()) : [];
          sendBack({ type: 'TASK_DONE', id: order.id, result, childIds });
        },
        error: (err) => {
          // A bug in the task machine: end the task rather than leave the search hanging.
          deps.log.error({ err, session, task: order.id }, 'task machine failed');
          if (ended(order.id, 'failed', 'E_UNKNOWN')) sendBack({ type: 'TASK_DONE', id: order.id, result: { ok: false, code: 'E_UNKNOWN' }, childIds: [] });
        },
      });
      actor.start();
    };

    const admit = () => {
      nextSlice = undefined;
      const until = Math.min(waiting.length, admitted + ADMIT_SLICE);
      for (; admitted < until; admitted++) {
        const order = waiting[admitted] as TaskOrder;
        const task = tasks.get(order.id);
        if (task && !task.actor) launch(order, task); // not stopped meanwhile
      }
      if (admitted < waiting.length) nextSlice = setImmediate(admit);
      else {
        waiting.length = 0;
        admitted = 0;
      }
    };

    const queue = (orders: readonly TaskOrder[]) => {
      for (const order of orders) {
        tasks.set(order.id, { kind: order.kind, supplier: order.supplier, running: false });
        stats.taskQueued();
        board.live.queued++;
        waiting.push(order);
      }
      if (!nextSlice) admit();
    };

    /** The session ends the task: a queued job leaves the pool, a running script's group is killed. */
    const stop = (id: number, code: ErrorCode) => ended(id, 'stopped', code)?.actor?.send({ type: 'STOP' });

    receive((order) => {
      if (order.type === 'QUEUE') queue(order.tasks);
      else if (order.type === 'REFUSE') {
        for (const t of order.tasks) {
          stats.taskQueued();
          stats.taskEnded(t.kind, false, 'E_SCRIPT_CANCELLED');
          if (t.kind === 'ITEMS') stats.supplierTask(t.supplier, 'cancelled');
          board.ended.cancelled++;
        }
      } else if (order.type === 'STOP') for (const t of order.tasks) stop(t.id, t.code);
      // (anything else is xstate telling a parent that a task ended: the subscription has it)
    });

    // Whatever is left when the host stops (the session completed) or its session fails (a
    // bug: XState then stops nothing by itself) is stopped here, the one place tasks end early.
    const stopAll = () => {
      for (const id of [...tasks.keys()]) stop(id, 'E_UNKNOWN');
    };
    const watch = system.get(SESSION_SYSTEM_ID)?.subscribe({ error: stopAll });
    return () => {
      watch?.unsubscribe();
      if (nextSlice) clearImmediate(nextSlice);
      stopAll();
    };
  });
}
