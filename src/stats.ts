// The /stats counters (docs/protocol.md, /stats). Sessions are counted by src/session.ts as they
// open and end, tasks by their task host (src/task-host.ts) as they are queued, start and end,
// all within one turn of the event loop, so both invariants (sessionTotal = alive + finished;
// taskTotal = pending + succeeded + failed) hold whenever /stats is read. Metrics and other
// observers hook in through `listeners`.
import type { ErrorCode } from './errors.js';
import type { TaskKind } from './frames.js';
import type { RunnerName } from './processes/starter.js';

export interface StatsJson {
  uptime: string;
  uptimeSeconds: number;
  sessionTotal: number;
  sessionAlive: number;
  sessionFinished: number;
  taskTotal: number;
  taskPending: number;
  taskRunning: number;
  taskSucceeded: number;
  taskFailed: number;
  poolSize: number;
  poolBusy: number;
}

/**
 * How an ITEMS task ended, for the per-supplier metrics: `failed` when the supplier's script
 * failed on its own (timeout, error, bad answer, cannot start), `cancelled` when the task was
 * ended from outside before or while its script ran (queued past its chance, session timeout,
 * browser gone, shutdown): not the supplier's fault, so it does not count against it.
 */
export type SupplierOutcome = 'succeeded' | 'failed' | 'cancelled';

const SUPPLIER_OUTCOME: Record<ErrorCode, SupplierOutcome> = {
  E_SCRIPT_START: 'failed',
  E_SCRIPT_ERROR: 'failed',
  E_SCRIPT_TIMEOUT: 'failed',
  E_ITEMS_JSON: 'failed',
  E_ITEMS_RESPONSE: 'failed',
  E_UNKNOWN: 'failed',
  E_SCRIPT_CANCELLED: 'cancelled',
  E_SESSION_TIMEOUT: 'cancelled',
  E_SESSION_CLOSED: 'cancelled',
  E_SERVER_SHUTDOWN: 'cancelled',
  // Session-level codes an ITEMS task never ends with; listed so every code has an answer.
  E_REQUEST_JSON: 'failed',
  E_ILLEGAL_REQUEST: 'failed',
  E_SESSION_REUSED: 'failed',
  E_SUPPLIERS_JSON: 'failed',
  E_SUPPLIERS_RESPONSE: 'failed',
  E_TOO_MANY_SESSIONS: 'cancelled',
};

/** The outcome of an ITEMS task that ended with `code` (none = SUCCESS). */
export function supplierOutcome(code?: ErrorCode): SupplierOutcome {
  return code ? SUPPLIER_OUTCOME[code] : 'succeeded';
}

/** A supplier object's name for the metrics: its `class` field when that is a non-empty string. */
export function supplierClass(supplier: Readonly<Record<string, unknown>> | undefined): string | undefined {
  const value = supplier && Object.prototype.hasOwnProperty.call(supplier, 'class') ? supplier['class'] : undefined;
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Observers of what the counters count (src/metrics.ts is one). */
export interface StatsListener {
  taskEnded?(kind: TaskKind, outcome: 'succeeded' | 'failed', code?: ErrorCode): void;
  sessionEnded?(code?: ErrorCode): void;
  /** `runner`: how its process was made (warm or spawn); undefined when it could not be started. */
  scriptRun?(kind: TaskKind, waitMs: number, runMs: number, runner?: RunnerName): void;
  itemsSent?(count: number): void;
  /** An ITEMS task ended; `runMs` when its script ran (not for a task that never started). */
  supplierTask?(supplier: string | undefined, outcome: SupplierOutcome, runMs?: number): void;
}

export function formatUptime(seconds: number): string {
  const s = Math.floor(seconds);
  const parts: string[] = [];
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) parts.push(`${d}d`);
  if (d || h) parts.push(`${h}h`);
  if (d || h || m) parts.push(`${m}m`);
  parts.push(`${s % 60}s`);
  return parts.join(' ');
}

export class Stats {
  readonly startedAt = Date.now();
  readonly listeners: StatsListener[] = [];
  sessionTotal = 0;
  sessionAlive = 0;
  taskTotal = 0;
  taskPending = 0;
  taskRunning = 0;
  taskSucceeded = 0;
  taskFailed = 0;
  itemsSent = 0;

  constructor(private readonly pool: { readonly size: number; readonly busy: number }) {}

  sessionOpened(): void {
    this.sessionTotal++;
    this.sessionAlive++;
  }

  sessionEnded(code?: ErrorCode): void {
    this.sessionAlive--;
    for (const l of this.listeners) l.sessionEnded?.(code);
  }

  taskQueued(): void {
    this.taskTotal++;
    this.taskPending++;
  }

  taskStarted(): void {
    this.taskRunning++;
  }

  taskEnded(kind: TaskKind, wasRunning: boolean, code?: ErrorCode): void {
    this.taskPending--;
    if (wasRunning) this.taskRunning--;
    if (code) this.taskFailed++;
    else this.taskSucceeded++;
    for (const l of this.listeners) l.taskEnded?.(kind, code ? 'failed' : 'succeeded', code);
  }

  scriptRun(kind: TaskKind, waitMs: number, runMs: number, runner?: RunnerName): void {
    for (const l of this.listeners) l.scriptRun?.(kind, waitMs, runMs, runner);
  }

  /**
   * An ITEMS task ended: `supplier` is its supplier's class (supplierClass), `runMs` its
   * script's run time when a script ran. Only metrics listen; /stats is unchanged.
   */
  supplierTask(supplier: string | undefined, outcome: SupplierOutcome, runMs?: number): void {
    for (const l of this.listeners) l.supplierTask?.(supplier, outcome, runMs);
  }

  items(count: number): void {
    this.itemsSent += count;
    for (const l of this.listeners) l.itemsSent?.(count);
  }

  toJSON(): StatsJson {
    const uptimeSeconds = Math.floor((Date.now() - this.startedAt) / 1000);
    return {
      uptime: formatUptime(uptimeSeconds),
      uptimeSeconds,
      sessionTotal: this.sessionTotal,
      sessionAlive: this.sessionAlive,
      sessionFinished: this.sessionTotal - this.sessionAlive,
      taskTotal: this.taskTotal,
      taskPending: this.taskPending,
      taskRunning: this.taskRunning,
      taskSucceeded: this.taskSucceeded,
      taskFailed: this.taskFailed,
      poolSize: this.pool.size,
      poolBusy: this.pool.busy,
    };
  }
}
