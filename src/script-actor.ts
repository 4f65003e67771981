// The `script` actor the task machine invokes: wait for a pool slot, run the script, translate
// its stdout. Stopping the actor (task dropped, session ended) aborts: a queued job leaves the
// queue, a running one has its process group killed.
import { fromCallback } from 'xstate';
import type { ScriptEvent, ScriptInput, TaskResult } from '../machines/task.js';
import type { Command } from './command.js';
import type { Config } from './config-types.js';
import type { TaskKind } from './frames.js';
import type { Logger } from './logger.js';
import type { Pool } from './pool.js';
import type { RunResult, RunScript } from './processes/protocol.js';
import { redactStderr } from './secrets.js';
import type { Stats } from './stats.js';
import { parseItems, parseSuppliers } from './translate.js';

export interface ScriptDeps {
  readonly config: Config;
  readonly pool: Pool;
  readonly stats: Stats;
  readonly commands: { readonly suppliers: Command; readonly items: Command };
  /** Starts a script (through the launcher process, src/processes/link.ts). */
  readonly run: RunScript;
  readonly log: Logger;
}

/** A script's answer parsed once: the bytes go as soon as they are text, the text once parsed. */
export function translateRun(kind: TaskKind, run: RunResult, fields: Config['fields']): TaskResult {
  if (!run.ok) return { ok: false, code: run.code };
  const bytes = run.stdout.length;
  const stdout = run.stdout.toString('utf8');
  if (kind === 'SUPPLIERS') {
    const res = parseSuppliers(stdout, fields.suppliers);
    return res.ok ? { ok: true, items: [], suppliers: res.suppliers, bytes } : res;
  }
  const res = parseItems(stdout, fields);
  return res.ok ? { ...res, bytes } : res;
}

/** One logic for every task of an app; what a task needs to know of its session is in its input. */
export function scriptActor(deps: ScriptDeps) {
  return fromCallback<ScriptEvent, ScriptInput>(({ input, sendBack }) => {
    const log = deps.log.child({ session: input.session, task: input.id });
    const abort = new AbortController();
    const queuedAt = performance.now();
    const { config } = deps;
    // Set before FINISHED goes out: the task machine stops this actor while handling it.
    let finished = false;
    const job = async () => {
      sendBack({ type: 'STARTED' });
      const startedAt = performance.now();
      let taskLog = log;
      const run = await deps.run({
        command: input.kind === 'SUPPLIERS' ? deps.commands.suppliers : deps.commands.items,
        input: input.stdin,
        timeoutMs: config.timeout.scriptMs,
        killAfterMs: config.timeout.killMs,
        maxOutputBytes: config.limit.outputSizeBytes,
        env: { AGGREGATOR_SESSION: input.session, AGGREGATOR_TASK_ID: String(input.id) },
        signal: abort.signal,
        onSpawn: (pid) => {
          taskLog = log.child({ pid });
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
        log.error({ err }, 'script task failed unexpectedly');
        finished = true;
        if (!abort.signal.aborted) sendBack({ type: 'FINISHED', result: { ok: false, code: 'E_UNKNOWN' } });
      });
    void deps.pool.run(input.session, guarded, abort.signal);
    // Nothing to abort once the script is done (abort() builds a DOMException with its stack).
    return () => finished || abort.abort();
  });
}
