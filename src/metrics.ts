// GET /metrics (docs/monitoring.md): Prometheus text from prom-client. One Registry per app instance
// (tests build many apps; a second collectDefaultMetrics on one registry throws). The /stats
// figures are read at scrape time (collect()); task outcomes, errors, run times, items and
// the per-supplier figures are counted as they happen through a StatsListener.
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StatsJson, StatsListener } from './stats.js';

export const METRIC_PREFIX = 'aggregator_';

/** Seconds; a script runs up to timeout.script (5 s default), a queue wait up to the session (30 s). */
const RUN_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];
const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];

export interface MetricsSource {
  readonly stats: { toJSON(): StatsJson; readonly listeners: StatsListener[] };
  readonly pool: { readonly queued: number };
  readonly launcher: { readonly deaths: number; readonly warmRestarts: number };
  readonly instance: string;
  /** aggregator.metrics.suppliers: distinct supplier labels kept apart; later ones are `other`. */
  readonly suppliers: number;
}

/** Label of the suppliers past aggregator.metrics.suppliers. */
export const OTHER_SUPPLIER = 'other';
/** Label of a supplier object without a string `class`. */
export const UNKNOWN_SUPPLIER = 'unknown';
/** Longer class names are cut: a label is sent on every scrape, for every series. */
const MAX_SUPPLIER_LABEL = 100;

/**
 * The `supplier` label of a class name: the first `limit` distinct names keep theirs (first
 * seen, first kept, for the life of the process, so a series never changes its name); the rest
 * share `other`, so a script returning ever new names cannot blow up Prometheus' series count.
 */
export function supplierLabels(limit: number): (supplier: string | undefined) => string {
  const kept = new Set<string>();
  return (supplier) => {
    if (supplier === undefined || supplier === '') return UNKNOWN_SUPPLIER;
    const name = supplier.slice(0, MAX_SUPPLIER_LABEL);
    if (kept.has(name)) return name;
    if (kept.size >= limit) return OTHER_SUPPLIER;
    kept.add(name);
    return name;
  };
}

/** Which /stats figure each metric mirrors; counters for the ones that only grow. */
const STATS_GAUGES: [name: string, help: string, figure: keyof StatsJson][] = [
  ['uptime_seconds', 'Seconds since the aggregator started', 'uptimeSeconds'],
  ['sessions_alive', 'Searches open now (/stats sessionAlive)', 'sessionAlive'],
  ['tasks_pending', 'Tasks queued or running now (/stats taskPending)', 'taskPending'],
  ['tasks_running', 'Tasks whose script runs now (/stats taskRunning)', 'taskRunning'],
  ['pool_size', 'Script processes allowed at once (aggregator.pool.executor)', 'poolSize'],
  ['pool_busy', 'Script processes running now (/stats poolBusy)', 'poolBusy'],
];
const STATS_COUNTERS: [name: string, help: string, figure: keyof StatsJson][] = [
  ['sessions_started_total', 'Searches opened since start (/stats sessionTotal)', 'sessionTotal'],
  ['sessions_finished_total', 'Searches ended since start (/stats sessionFinished)', 'sessionFinished'],
  ['tasks_queued_total', 'Tasks created since start (/stats taskTotal)', 'taskTotal'],
  ['tasks_succeeded_total', 'Tasks ended with SUCCESS (/stats taskSucceeded)', 'taskSucceeded'],
  ['tasks_failed_total', 'Tasks ended with ERROR, cancelled ones included (/stats taskFailed)', 'taskFailed'],
];

export function createMetrics(src: MetricsSource): Registry {
  const registry = new Registry();
  // Prometheus renames a scraped `instance` label to exported_instance unless honor_labels is
  // set (docs/monitoring.md); the label still tells instances apart in federated setups.
  registry.setDefaultLabels({ instance: src.instance });
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  for (const [name, help, figure] of STATS_GAUGES) {
    new Gauge({
      name: METRIC_PREFIX + name,
      help,
      registers,
      collect() {
        this.set(Number(src.stats.toJSON()[figure]));
      },
    });
  }
  new Gauge({
    name: `${METRIC_PREFIX}pool_queued`,
    help: 'Tasks waiting for a free script process',
    registers,
    collect() {
      this.set(src.pool.queued);
    },
  });
  // A figure kept elsewhere is the truth; its counter only mirrors it at scrape time.
  const mirrored = (name: string, help: string, read: () => number) =>
    new Counter({
      name: METRIC_PREFIX + name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  mirrored('launcher_deaths_total', 'Times the script launcher process died or was killed as wedged (its running scripts failed)', () => src.launcher.deaths);
  mirrored('warm_parent_restarts_total', 'Warm PHP parents started to replace one that died (its running scripts failed)', () => src.launcher.warmRestarts);
  for (const [name, help, figure] of STATS_COUNTERS) mirrored(name, help, () => Number(src.stats.toJSON()[figure]));

  const tasksEnded = new Counter({
    name: `${METRIC_PREFIX}tasks_ended_total`,
    help: 'Tasks ended, by task (SUPPLIERS, ITEMS) and outcome (succeeded, failed)',
    labelNames: ['task', 'outcome'] as const,
    registers,
  });
  const errors = new Counter({
    name: `${METRIC_PREFIX}errors_total`,
    help: 'Errors by code; scope task = an ERROR frame of a task, session = how a search ended',
    labelNames: ['scope', 'code'] as const,
    registers,
  });
  const runSeconds = new Histogram({
    name: `${METRIC_PREFIX}script_run_seconds`,
    help: 'Script run time from process start to exit, by task',
    labelNames: ['task'] as const,
    buckets: RUN_BUCKETS,
    registers,
  });
  const waitSeconds = new Histogram({
    name: `${METRIC_PREFIX}queue_wait_seconds`,
    help: 'Time a task waited in the pool queue before its script started, by task',
    labelNames: ['task'] as const,
    buckets: WAIT_BUCKETS,
    registers,
  });
  const scriptRuns = new Counter({
    name: `${METRIC_PREFIX}script_runs_total`,
    help: 'Script processes run, by task and by runner (warm: forked from a warm PHP parent; spawn: a new process)',
    labelNames: ['task', 'runner'] as const,
    registers,
  });
  const itemsSent = new Counter({
    name: `${METRIC_PREFIX}items_sent_total`,
    help: 'Item frames sent to browsers',
    registers,
  });
  const supplierTasks = new Counter({
    name: `${METRIC_PREFIX}supplier_tasks_total`,
    help: "ITEMS tasks by supplier (the supplier's class) and outcome (succeeded, failed, cancelled)",
    labelNames: ['supplier', 'outcome'] as const,
    registers,
  });
  const supplierSeconds = new Histogram({
    name: `${METRIC_PREFIX}supplier_seconds`,
    help: "Items script run time by supplier (the supplier's class), process start to exit",
    labelNames: ['supplier'] as const,
    buckets: RUN_BUCKETS,
    registers,
  });
  const supplierLabel = supplierLabels(src.suppliers);

  src.stats.listeners.push({
    taskEnded(task, outcome, code) {
      tasksEnded.inc({ task, outcome });
      if (code) errors.inc({ scope: 'task', code });
    },
    sessionEnded(code) {
      if (code) errors.inc({ scope: 'session', code });
    },
    scriptRun(task, waitMs, runMs, runner) {
      if (runner) scriptRuns.inc({ task, runner });
      waitSeconds.observe({ task }, waitMs / 1000);
      runSeconds.observe({ task }, runMs / 1000);
    },
    itemsSent(count) {
      itemsSent.inc(count);
    },
    supplierTask(supplier, outcome, runMs) {
      const label = supplierLabel(supplier);
      supplierTasks.inc({ supplier: label, outcome });
      if (runMs !== undefined) supplierSeconds.observe({ supplier: label }, runMs / 1000);
    },
  });
  return registry;
}

/** Serves GET /metrics from `registry`. */
export function registerMetrics(app: FastifyInstance, registry: Registry): void {
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
}
