// /debug (docs/protocol.md, /debug): the session chart and the task chart, each read from its
// machine definition itself, with live counts: sessions per state, tasks per state (the task
// actors every session's task host holds), and each live session's state and tasks.
// Registered only when aggregator.debug is true. Shows states, counts and ids only: never a
// request value (no apikey), never supplier params.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AnyStateNode } from 'xstate';
import { type SessionActor, sessionMachine } from '../machines/session.js';
import { taskMachine } from '../machines/task.js';
import { PUBLIC_DIR } from './paths.js';
import type { TaskBoard } from './task-host.js';

export interface ChartState {
  /** The state node id, e.g. `session.searching.fetchingItems`. */
  id: string;
  key: string;
  type: AnyStateNode['type'];
  parent?: string;
  /** For a compound state: the id of its initial child. */
  initial?: string;
  /** Entry action names, in order. */
  entry: string[];
  /** Events handled without leaving the state (transitions with no target). */
  internal: string[];
}

export interface ChartTransition {
  source: string;
  target: string;
  /** The event type, `always` for eventless, `after <delay>` for delayed transitions. */
  event: string;
  guard?: string;
}

export interface ChartInvoke {
  /** Where the actor lives: the state id (the machine's id for the whole machine). */
  state: string;
  id: string;
  src: string;
}

export interface Chart {
  id: string;
  initial?: string;
  states: ChartState[];
  transitions: ChartTransition[];
  /** Actors the machine invokes (the session's task host, the task's script). */
  invokes: ChartInvoke[];
}

export interface DebugSession {
  id: string;
  /** Ids of the active leaf states. */
  state: string[];
  ageMs: number | null;
  tasks: { queued: number; running: number; created: number; finished: number };
}

export interface DebugSessions {
  /** Live sessions in each state (a compound state counts the sessions in any of its children). */
  byState: Record<string, number>;
  /** Sessions that ended since the start, by final state. */
  ended: Record<string, number>;
  total: number;
  /** The oldest sessions first, at most MAX_LISTED. */
  sessions: DebugSession[];
  truncated: boolean;
  /** Task actors in every session's task host, by task state id; ended ones by final state. */
  tasks: { byState: Record<string, number>; ended: Record<string, number> };
}

const MAX_LISTED = 500;
// Where elkjs keeps its browser build (no CDN: the aggregator serves it).
const ELK_BUNDLE = createRequire(import.meta.url).resolve('elkjs/lib/elk.bundled.js');
export const DEBUG_DIR = path.join(PUBLIC_DIR, 'debug');

function nameOf(thing: unknown): string | undefined {
  if (typeof thing === 'string') return thing;
  // Built-in actions (raise, cancel…) are functions with an `xstate.*` type.
  if (typeof thing === 'function') {
    const type = (thing as { type?: unknown }).type;
    return typeof type === 'string' ? type : thing.name || 'inline';
  }
  if (thing && typeof thing === 'object' && 'type' in thing) return String((thing as { type: unknown }).type);
  return undefined;
}

function eventLabel(eventType: string, delay: unknown): string {
  if (eventType === '') return 'always';
  if (eventType.startsWith('xstate.after.')) return `after ${nameOf(delay) ?? String(delay)}`;
  return eventType;
}

/** The chart of a machine, walked from its root state node (the live definition, so a change
 *  to the machine changes the picture). `definition`/toJSON() lacks `always`, hence the walk. */
export function chartOf(root: AnyStateNode): Chart {
  const states: ChartState[] = [];
  const transitions: ChartTransition[] = [];
  const invokes: ChartInvoke[] = [];
  const visit = (node: AnyStateNode) => {
    for (const inv of node.invoke) invokes.push({ state: node.id, id: inv.id, src: typeof inv.src === 'string' ? inv.src : (nameOf(inv.src) ?? 'inline') });
    const internal: string[] = [];
    const all = [...[...node.transitions.values()].flat(), ...(node.always ?? [])];
    for (const t of all) {
      const event = eventLabel(t.eventType, (t as { delay?: unknown }).delay);
      const guard = nameOf(t.guard);
      if (!t.target || t.target.length === 0) {
        if (!internal.includes(event)) internal.push(event);
        continue;
      }
      for (const target of t.target) transitions.push(guard ? { source: node.id, target: target.id, event, guard } : { source: node.id, target: target.id, event });
    }
    if (node !== root) {
      const state: ChartState = {
        id: node.id,
        key: node.key,
        type: node.type,
        entry: node.entry.map(nameOf).filter((n): n is string => !!n && !n.startsWith('xstate.')),
        internal,
      };
      if (node.parent && node.parent !== root) state.parent = node.parent.id;
      const initial = node.type === 'compound' ? node.initial.target[0] : undefined;
      if (initial) state.initial = initial.id;
      states.push(state);
    }
    for (const child of Object.values(node.states) as AnyStateNode[]) visit(child);
  };
  visit(root);
  const chart: Chart = { id: root.id, states, transitions, invokes };
  const initial = root.initial.target[0];
  if (initial) chart.initial = initial.id;
  return chart;
}

/** Ids of the active states of a state value, leaves only: {searching: 'fetchingItems'} → ['session.searching.fetchingItems']. */
export function activeLeaves(root: AnyStateNode, value: unknown): string[] {
  const out: string[] = [];
  const walk = (node: AnyStateNode, v: unknown) => {
    if (typeof v === 'string') {
      const child = node.states[v] as AnyStateNode | undefined;
      if (child) out.push(child.id);
    } else if (v && typeof v === 'object') {
      for (const [key, sub] of Object.entries(v)) {
        const child = node.states[key] as AnyStateNode | undefined;
        if (!child) continue;
        if (sub && (typeof sub === 'string' || Object.keys(sub).length > 0)) walk(child, sub);
        else out.push(child.id);
      }
    }
  };
  walk(root, value);
  return out;
}

export interface DebugView {
  /** Called for every new session: remembers its start and counts its final state. */
  track(actor: SessionActor): void;
  snapshot(): DebugSessions;
}

export function createDebugView(sessions: Map<string, SessionActor>, board: TaskBoard, root: AnyStateNode = sessionMachine.root): DebugView {
  const chart = chartOf(root);
  const taskId = (state: string) => `${taskMachine.id}.${state}`;
  const parents = new Map(chart.states.map((s) => [s.id, s.parent]));
  const startedAt = new WeakMap<SessionActor, number>();
  const ended: Record<string, number> = {};

  return {
    track(actor) {
      startedAt.set(actor, Date.now());
      actor.subscribe({
        complete: () => {
          for (const id of activeLeaves(root, actor.getSnapshot().value)) ended[id] = (ended[id] ?? 0) + 1;
        },
        error: () => {
          ended.error = (ended.error ?? 0) + 1;
        },
      });
    },
    snapshot() {
      const now = Date.now();
      const byState: Record<string, number> = Object.fromEntries(chart.states.map((s) => [s.id, 0]));
      const list: DebugSession[] = [];
      for (const [id, actor] of sessions) {
        const snap = actor.getSnapshot();
        const leaves = activeLeaves(root, snap.value);
        const counted = new Set<string>();
        for (const leaf of leaves) for (let s: string | undefined = leaf; s; s = parents.get(s)) counted.add(s);
        for (const s of counted) byState[s] = (byState[s] ?? 0) + 1;
        if (list.length >= MAX_LISTED) continue;
        let queued = 0;
        let running = 0;
        for (const task of snap.context.open.values()) {
          if (task.status === 'running') running++;
          else queued++;
        }
        const created = snap.context.created;
        const started = startedAt.get(actor);
        list.push({
          id,
          state: leaves,
          ageMs: started === undefined ? null : now - started,
          tasks: { queued, running, created, finished: created - queued - running },
        });
      }
      const tasks = {
        byState: { [taskId('queued')]: board.live.queued, [taskId('running')]: board.live.running },
        ended: {
          [taskId('succeeded')]: board.ended.succeeded,
          [taskId('failed')]: board.ended.failed,
          [taskId('cancelled')]: board.ended.cancelled,
          [taskId('stopped')]: board.ended.stopped,
        },
      };
      return { byState, ended: { ...ended }, total: sessions.size, sessions: list, truncated: sessions.size > list.length, tasks };
    },
  };
}

function sendFile(file: string, type: string) {
  return async (_req: unknown, reply: FastifyReply) =>
    reply.header('cache-control', 'no-cache').type(type).send(fs.createReadStream(file));
}

/** Adds /debug, /debug/machine, /debug/task-machine, /debug/sessions and the page's assets. Call only when debug is on. */
export function registerDebug(app: FastifyInstance, sessions: Map<string, SessionActor>, board: TaskBoard): DebugView {
  const view = createDebugView(sessions, board);
  const chart = chartOf(sessionMachine.root);
  const taskChart = chartOf(taskMachine.root);
  app.get('/debug', sendFile(path.join(DEBUG_DIR, 'index.html'), 'text/html; charset=utf-8'));
  app.get('/debug/debug.js', sendFile(path.join(DEBUG_DIR, 'debug.js'), 'text/javascript; charset=utf-8'));
  app.get('/debug/debug.css', sendFile(path.join(DEBUG_DIR, 'debug.css'), 'text/css; charset=utf-8'));
  app.get('/debug/elk.js', sendFile(ELK_BUNDLE, 'text/javascript; charset=utf-8'));
  app.get('/debug/machine', async () => chart);
  app.get('/debug/task-machine', async () => taskChart);
  app.get('/debug/sessions', async (_req, reply) => reply.header('cache-control', 'no-store').send(view.snapshot()));
  return view;
}
