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
import { cacheKey } from './cache/key.js';
import type { ItemsCache } from './cache/items-cache.js';
import { redactStderr } from './secrets.js';
import type { Stats } from './stats.js';
import { parseItems, parseSuppliers } from './translate.js';

export interface ScriptDeps {
  readonly config: Config;
  /** The items cache (src/cache/); off unless aggregator.cache.ttl > 0. */
  readonly cache: ItemsCache<RunResult | undefined>;
  readonly pool: Pool;
  readonly stats: Stats;
  readonly commands: { readonly suppliers: Command; readonly items: Command };
  /** Starts a script (through the launcher process, src/processes/link.ts). */
  readonly run: RunScript;
  readonly log: Logger;
}

/** A script's answer parsed once: the bytes go as soon as they are text, the text once parsed. */
export function translateRun(kind: TaskKind, run: RunResult, fields: Config['fields']): TaskResult {
  const runMs = run.durationMs;
  if (!run.ok) return { ok: false, code: run.code, runMs };
  const { stdout } = run;
  // Characters, as the outbox counts frames.
  const bytes = stdout.length;
  if (kind === 'SUPPLIERS') {
    const res = parseSuppliers(stdout, fields.suppliers);
    return res.ok ? { ok: true, items: [], suppliers: res.suppliers, bytes, runMs } : { ...res, runMs };
  }
  const res = parseItems(stdout, fields);
  return res.ok ? { ...res, bytes, runMs } : { ...res, runMs };
}

const DROPPED = new Error('task dropped');

/** One logic for every task of an app; what a task needs to know of its session is in its input. */
export function scriptActor(deps: ScriptDeps) {
  const { config, cache } = deps;
  const debug = deps.log.isLevelEnabled('debug');
  return fromCallback<ScriptEvent, ScriptInput>(({ input, sendBack }) => {
    // Child loggers are made when something is logged: making one serialises its bindings, and
    // at INFO most tasks log nothing.
    let taskLog: Logger | undefined;
    let pidLog: Logger | undefined;
    let pid: number | undefined;
    const log = () => (taskLog ??= deps.log.child({ session: input.session, task: input.id }));
    const runLog = () => (pid === undefined ? log() : (pidLog ??= log().child({ pid })));
    const abort = new AbortController();
    const queuedAt = performance.now();
    // Set before FINISHED goes out: the task machine stops this actor while handling it.
    let finished = false;
    const finish = (result: TaskResult) => {
      finished = true;
      sendBack({ type: 'FINISHED', result });
    };

    const started = () => sendBack({ type: 'STARTED' });

    /**
     * Waits for a pool slot, then runs the script; undefined when aborted before it started.
     * `onStart` is told when the slot is taken (the task is running from then on).
     */
    const execute = (signal: AbortSignal, onStart: () => void) =>
      new Promise<RunResult | undefined>((resolve, reject) => {
        const job = async () => {
          onStart();
          const startedAt = performance.now();
          const run = await deps.run({
            command: input.kind === 'SUPPLIERS' ? deps.commands.suppliers : deps.commands.items,
            input: input.stdin,
            timeoutMs: config.timeout.scriptMs,
            killAfterMs: config.timeout.killMs,
            maxOutputBytes: config.limit.outputSizeBytes,
            env: { AGGREGATOR_SESSION: input.session, AGGREGATOR_TASK_ID: String(input.id) },
            signal,
            onSpawn: (spawned) => {
              pid = spawned;
              if (debug) runLog().debug({ kind: input.kind }, 'script started');
            },
            // stderr is logged as text: the secrets this script was given are cut out of it first.
            log: {
              debug: (o, m) => debug && runLog().debug(redactStderr(o, input.stdin), m),
              warn: (o, m) => runLog().warn(redactStderr(o, input.stdin), m),
            },
          });
          deps.stats.scriptRun(input.kind, startedAt - queuedAt, run.durationMs, run.runner);
          if (signal.aborted) debug && runLog().debug({ ms: Math.round(run.durationMs) }, 'script killed: task dropped');
          else if (run.ok) debug && runLog().debug({ ms: Math.round(run.durationMs), chars: run.stdout.length }, 'script done');
          else runLog().info({ ms: Math.round(run.durationMs), code: run.code, reason: run.reason }, 'script failed');
          resolve(run);
        };
        // A throw in here is a bug: the task still ends (E_UNKNOWN, below) instead of waiting for the session timeout.
        void deps.pool.run(input.session, () => job().catch(reject), signal).then((ran) => ran || resolve(undefined));
      });

    /** An ITEMS task with the cache on: a stored answer, or one script run shared by identical tasks. */
    const cached = async (): Promise<TaskResult | undefined> => {
      const key = cacheKey(deps.commands.items.line, `${input.stdin}\n`);
      const hit = await cache.get(key);
      if (abort.signal.aborted) return undefined;
      if (hit) {
        const { runMs: _, ...res } = translateRun('ITEMS', { ok: true, stdout: hit.toString('utf8'), pid: 0, durationMs: 0 }, config.fields);
        // An answer stored under other field names (a config change) is no answer.
        if (res.ok) {
          if (debug) log().debug({ items: res.items.length }, 'answered from the items cache');
          return { ...res, cached: true };
        }
      }
      let mine: TaskResult | undefined;
      // Every task sharing the run is running once its script is (not while it waits for a
      // slot): as it would be with a process of its own, so aggregator.timeout.queue, a session
      // timeout and a shutdown treat it like the task whose run it shares.
      const run = await cache.join(
        key,
        abort.signal,
        async (shared, sharedStarted) => {
          const r = await execute(shared, sharedStarted);
          if (r?.ok) {
            mine = translateRun('ITEMS', r, config.fields);
            if (mine.ok) cache.set(key, Buffer.from(r.stdout, 'utf8'));
          }
          return r;
        },
        started,
      );
      if (!run) return undefined;
      // Only the first of the identical tasks ran the script; the others read its answer.
      return mine ?? translateRun('ITEMS', run, config.fields);
    };

    const flow = async () => {
      const result =
        cache.enabled && input.kind === 'ITEMS'
          ? await cached()
          : await execute(abort.signal, started).then((run) => run && translateRun(input.kind, run, config.fields));
      if (result && !abort.signal.aborted) finish(result);
    };
    flow().catch((err: unknown) => {
      // Dropped while it waited for a shared run (join rejects then): nothing to report.
      if (abort.signal.aborted) return;
      log().error({ err }, 'script task failed unexpectedly');
      finish({ ok: false, code: 'E_UNKNOWN' });
    });
    // Nothing to abort once the script is done; one shared reason, as abort() with none builds
    // a DOMException with its stack for every dropped task (2000 at a session timeout).
    return () => finished || abort.abort(DROPPED);
  });
}
