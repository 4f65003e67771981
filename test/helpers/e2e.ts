// Helpers for the end-to-end suites (scenarios, session lifecycle, stats, CLI): script
// command lines with a unique marker (to find and count our php processes), per-task views
// of a search's frames, /stats sampling, and a raw WebSocket upgrade probe.
import crypto from 'node:crypto';
import path from 'node:path';
import WebSocket from 'ws';
import { type AnyFrame, FIXTURES, processesMatching, waitFor } from './harness.js';
import type { StatsJson } from '../../src/stats.js';

export const PHP = '/usr/bin/php';

/** A marker unique to one test file run; it ends every script command line we configure. */
export function marker(name: string): string {
  return `e2e-${name}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
}

/** A demo script (script/NAME.php) command line; php ignores the trailing marker argument. */
export const demoScript = (name: 'suppliers' | 'items', mark: string) =>
  `${PHP} -d display_errors=stderr script/${name}.php ${mark}`;

/** A fixture of test/fixtures as a command line, with the marker. */
export const fixtureScript = (file: string, mark: string) => `${PHP} ${path.join(FIXTURES, file)} ${mark}`;

/** A request for test/fixtures/suppliers-from-code.php: `code` holds the suppliers as JSON. */
export const fixtureRequest = (suppliers: unknown[], extra: Record<string, unknown> = {}) => ({
  code: JSON.stringify(suppliers),
  brand: 'ctr',
  apikey: 'secret-apikey-222222',
  analog: 0,
  ...extra,
});

export interface TaskView {
  id: number;
  kind: string;
  frames: AnyFrame[];
  /** The terminal frame's status, or undefined when the task never ended. */
  status?: string;
  error?: string;
  parent?: number;
  info?: unknown;
  items: AnyFrame[];
  /** Index of the task's first and terminal frames in the search's frame list. */
  first: number;
  last: number;
}

/** Groups a search's task frames by `_id`, in order of their PENDING frames. */
export function taskViews(frames: AnyFrame[]): TaskView[] {
  const byId = new Map<number, TaskView>();
  frames.forEach((f, i) => {
    if (f._task === 'SESSION' || typeof f._id !== 'number') return;
    let v = byId.get(f._id);
    if (!v) {
      v = { id: f._id, kind: f._task, frames: [], items: [], first: i, last: -1, parent: f._parent, info: f._info };
      byId.set(f._id, v);
    }
    v.frames.push(f);
    if (f._status === 'SENDING') v.items.push(f);
    if (f._status === 'SUCCESS' || f._status === 'ERROR') {
      v.status = f._status;
      v.error = f._error;
      v.last = i;
    }
  });
  return [...byId.values()];
}

/** The SESSION frames that end a search (not E_SESSION_REUSED answers). */
export const finalFrames = (frames: AnyFrame[]) =>
  frames.filter((f) => f._task === 'SESSION' && f._error !== 'E_SESSION_REUSED');

export async function getStats(httpBase: string): Promise<StatsJson> {
  const res = await fetch(`${httpBase}/stats`);
  return (await res.json()) as StatsJson;
}

/** Violations of the /stats invariants (docs/protocol.md, `/stats`) in one /stats sample. */
export function statsViolations(s: StatsJson): string[] {
  const bad: string[] = [];
  if (s.sessionTotal !== s.sessionAlive + s.sessionFinished) bad.push(`sessionTotal ${s.sessionTotal} != alive + finished`);
  if (s.taskTotal !== s.taskPending + s.taskSucceeded + s.taskFailed) bad.push(`taskTotal ${s.taskTotal} != pending + succeeded + failed`);
  if (s.taskRunning < 0 || s.taskRunning > s.taskPending) bad.push(`taskRunning ${s.taskRunning} outside 0..taskPending ${s.taskPending}`);
  if (s.poolBusy < 0 || s.poolBusy > s.poolSize) bad.push(`poolBusy ${s.poolBusy} outside 0..poolSize ${s.poolSize}`);
  for (const [k, v] of Object.entries(s)) if (typeof v === 'number' && v < 0) bad.push(`${k} < 0`);
  return bad;
}

/**
 * Waits until no process carries `mark`; returns the pids still left after `ms`. (A SIGKILL is
 * sent at once, but the kernel ends the process only when it is next scheduled: late on a busy
 * machine.)
 */
export async function leftovers(mark: string, ms = 3000): Promise<number[]> {
  await waitFor(() => processesMatching(mark).length === 0, ms, 50);
  return processesMatching(mark);
}

/** Kills (SIGKILL) whatever still carries `mark`: a safety net for teardown only. */
export function killLeftovers(mark: string): void {
  for (const pid of processesMatching(mark)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Opens a WebSocket and reports the upgrade's outcome: 101 when accepted, else the HTTP status. */
export function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => {
      resolve(101);
      ws.close();
    });
    ws.on('error', (err) => reject(err));
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
