// The `script` actor the task machine invokes: wait for a pool slot, run the script, translate
// its stdout. Stopping the actor (task dropped, session ended) aborts: a queued job leaves the
// queue, a running one has its process group killed.
import { fromCallback } from 'xstate';
import type { Command } from './command.js';
import type { Config } from './config-types.js';
import type { Logger } from './logger.js';
import type { Pool } from './pool.js';
import { redactStderr } from './secrets.js';
import type { Stats } from './stats.js';
import { parseItems, parseSuppliers } from './translate.js';
import type { ScriptEvent, TaskInput, TaskResult } from '../machines/task.js';
import type { TaskKind } from './frames.js';
import type { RunResult, RunScript } from './processes/protocol.js';

export interface ScriptDeps {
  readonly config: Config;
  readonly pool: Pool;
  readonly stats: Stats;
  readonly commands: { readonly suppliers: Command; readonly items: Command };
  /** Starts a script (through the launcher process, src/launcher-link.ts). */
  readonly run: RunScript;
}

export function translateRun(kind: TaskKind, run: RunResult, fields: Config['fields']): TaskResult {
  if (!run.ok) return { ok: false, code: run.code };
  const stdout = run.stdout.toString('utf8');
  if (kind === 'SUPPLIERS') {
    const res = parseSuppliers(stdout, fields.suppliers);
    return res.ok ? { ok: true, items: [], suppliers: res.suppliers } : res;
  }
  return parseItems(stdout, fields);
}

/** The session a task belongs to, and its logger. */
export interface TaskHost {
  readonly session: string;
  readonly log: Logger;
}

/**
 * One logic for every task of an app: the task's session is looked up through the task
 * actor's own system (each task is a root actor, src/session.ts), so the machine is not
 * provided anew per session.
 */
export function scriptActor(deps: ScriptDeps, hostOf: (taskSystem: object) => TaskHost | undefined) {
  return fromCallback<ScriptEvent, Pick<TaskInput, 'id' | 'kind' | 'stdin'>>(({ input, sendBack, system }) => {
    const host = hostOf(system);
    if (!host) {
      sendBack({ type: 'FINISHED', result: { ok: false, code: 'E_UNKNOWN' } });
      return;
    }
    const { session, log } = host;
    const abort = new AbortController();
    const queuedAt = performance.now();
    const { config } = deps;
    // Set before FINISHED goes out: the task machine stops this actor while handling it.
    let finished = false;
    const job = async () => {
      sendBack({ type: 'STARTED' });
      const startedAt = performance.now();
      let taskLog = log.child({ task: input.id });
      const run = await deps.run({
        command: input.kind === 'SUPPLIERS' ? deps.commands.suppliers : deps.commands.items,
        input: input.stdin,
        timeoutMs: config.timeout.scriptMs,
        killAfterMs: config.timeout.killMs,
        maxOutputBytes: config.limit.outputSizeBytes,
        env: { AGGREGATOR_SESSION: session, AGGREGATOR_TASK_ID: String(input.id) },
        signal: abort.signal,
        onSpawn: (pid) => {
          taskLog = taskLog.child({ pid });
          taskLog.debug({ kind: input.kind }, 'script started');
        },
        // stderr is logged as text: the secrets this script was given are cut out of it first.
        log: {
          debug: (o, m) => taskLog.debug(redactStderr(o, input.stdin), m),
          warn: (o, m) => taskLog.warn(redactStderr(o, input.stdin), m),
        },
      });
      deps.stats.scriptRun(input.kind, startedAt - queuedAt, run.durationMs);
      if (abort.signal.aborted) {
        taskLog.debug({ ms: Math.round(run.durationMs) }, 'script killed: task dropped');
        return;
      }
      const result = translateRun(input.kind, run, config.fields);
      if (result.ok) taskLog.debug({ ms: Math.round(run.durationMs), items: result.items.length }, 'script done');
      else taskLog.info({ ms: Math.round(run.durationMs), code: result.code, reason: run.ok ? undefined : run.reason }, 'script failed');
      finished = true;
      sendBack({ type: 'FINISHED', result });
    };
    // A throw here is a bug; the task still ends (E_UNKNOWN) instead of waiting for the session timeout.
    const guarded = () =>
      job().catch((err: unknown) => {
        log.error({ err, task: input.id }, 'script task failed unexpectedly');
        finished = true;
        if (!abort.signal.aborted) sendBack({ type: 'FINISHED', result: { ok: false, code: 'E_UNKNOWN' } });
      });
    void deps.pool.run(session, guarded, abort.signal);
    // Nothing to abort once the script is done (abort() builds a DOMException with its stack).
    return () => finished || abort.abort();
  });
}
