// Builds the Fastify app (no listen, so tests can start it on port 0): the search and echo
// WebSockets, /stats, /health, the demo page. Owns the pool, the counters and the live sessions.
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { type SessionActor, sessionMachine } from '../machines/session.js';
import { parseCommand } from './command.js';
import type { Config } from './config-types.js';
import { registerDebug } from './debug.js';
import { openEcho } from './echo.js';
import { ERRORS } from './errors.js';
import { HEARTBEAT_MS, startHeartbeat } from './heartbeat.js';
import { type Launcher, startLauncher } from './processes/link.js';
import { warmEligibility } from './processes/warm.js';
import type { Logger } from './logger.js';
import { createMetrics, registerMetrics } from './metrics.js';
import { Pool } from './pool.js';
import { PUBLIC_DIR } from './paths.js';
import type { RunResult } from './processes/protocol.js';
import { createItemsCache } from './cache/items-cache.js';
import { registerCacheMetrics } from './cache/metrics.js';
import { openSession } from './session.js';
import { Stats } from './stats.js';
import { TaskBoard, taskHost } from './task-host.js';

export interface Aggregator {
  readonly app: FastifyInstance;
  readonly config: Config;
  readonly pool: Pool;
  readonly stats: Stats;
  readonly sessions: Map<string, SessionActor>;
  readonly log: Logger;
  /** The process that starts the scripts (src/processes/launcher.ts). */
  readonly launcher: Launcher;
  /** Live task counts by task state (for /debug). */
  readonly board: TaskBoard;
  /** Ends every search with E_SERVER_SHUTDOWN, kills every script group, closes the server. */
  shutdown(): Promise<void>;
}

export interface AppOptions {
  /** WebSocket ping interval (src/heartbeat.ts); not a config key, tests shorten it. */
  heartbeatMs?: number;
  /** The aggregator's owner tag (src/processes/reaper.ts), which its scripts carry; main.ts sets it. */
  owner?: string;
  /** The log file the launcher writes to should the aggregator be gone (main.ts sets it). */
  logFile?: string;
}

export async function buildApp(config: Config, log: Logger, options: AppOptions = {}): Promise<Aggregator> {
  const pool = new Pool(config.pool.executor, config.pool.order);
  const stats = new Stats(pool);
  const sessions = new Map<string, SessionActor>();
  const commands = { suppliers: parseCommand(config.script.suppliers), items: parseCommand(config.script.items) };
  const echoCommand = parseCommand(config.script.echo);
  let taskSeq = 0;
  let shuttingDown = false;
  // Which runner each configured script gets, and why (the launcher decides the same way).
  for (const [script, command] of Object.entries({ ...commands, echo: echoCommand })) {
    const how = config.script.runner === 'warm' ? warmEligibility(command) : { ok: false, reason: 'spawn: aggregator.script.runner=spawn' };
    log.info({ script, command: command.line, runner: how.ok ? 'warm' : 'spawn' }, `script runner: ${how.reason}`);
  }
  const launcher = startLauncher({ killMs: config.timeout.killMs, log, owner: options.owner, logFile: options.logFile, runner: config.script.runner });
  const run = launcher.run;
  const nextTaskId = () => ++taskSeq;
  const board = new TaskBoard();
  const cache = createItemsCache<RunResult | undefined>(
    { ttlMs: config.cache.ttlMs, sizeBytes: config.cache.sizeBytes, redisUrl: config.cache.redis },
    log.child({ component: 'cache' }),
  );
  // One session logic per app, with the app's task host: a provide()d machine has its own state
  // nodes, which every session would carry if it were provided per session (about 20 KB each).
  const logic = sessionMachine.provide({
    actors: { taskHost: taskHost({ config, pool, stats, commands, run, log, nextTaskId, board, cache }) },
  });

  const app: FastifyInstance = Fastify({
    loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new Fastify.LogController({ disableRequestLogging: true }),
  });
  await app.register(fastifyWebsocket, {
    options: { maxPayload: config.limit.requestSizeBytes },
    // Sessions are closed by shutdown() with E_SERVER_SHUTDOWN first; this only drops stragglers.
    preClose: function (this: FastifyInstance, done) {
      for (const client of this.websocketServer.clients) client.terminate();
      this.websocketServer.close(() => done());
    },
  });
  const heartbeat = startHeartbeat(app.websocketServer, options.heartbeatMs ?? HEARTBEAT_MS, () =>
    log.info('WebSocket peer answered no ping: connection terminated'),
  );
  app.addHook('onClose', async () => heartbeat.stop());
  // Last: the killed scripts' tasks settle (their last log lines come before ours), then the
  // launcher goes; it stops whatever a slow script still holds.
  app.addHook('onClose', async () => {
    await idle(pool, config.timeout.killMs + 500);
    launcher.stop();
    await cache.close();
  });

  const allowed = config.server.allowedOrigins;
  const checkOrigin = async (req: FastifyRequest, reply: FastifyReply) => {
    if (allowed && !allowed.includes(String(req.headers.origin ?? ''))) {
      log.warn({ origin: req.headers.origin ?? null, url: req.url }, 'WebSocket origin refused');
      return reply.code(403).send({ error: 'origin not allowed' });
    }
  };

  const debug = config.debug ? registerDebug(app, sessions, board) : undefined;

  app.get('/ws', { websocket: true, preValidation: checkOrigin }, (socket) => {
    if (shuttingDown) return socket.close(ERRORS.E_SERVER_SHUTDOWN.close, 'E_SERVER_SHUTDOWN');
    if (sessions.size >= config.limit.sessions) {
      log.warn({ limit: config.limit.sessions }, 'too many sessions');
      return socket.close(ERRORS.E_TOO_MANY_SESSIONS.close, 'E_TOO_MANY_SESSIONS');
    }
    const actor = openSession(socket, { config, stats, log, logic, sessions, nextTaskId });
    debug?.track(actor);
  });

  app.get('/echo', { websocket: true, preValidation: checkOrigin }, (socket, req) => {
    openEcho(socket, req.query as Record<string, string>, { config, pool, command: echoCommand, log, run });
  });

  app.get('/stats', async () => stats.toJSON());
  const registry = createMetrics({ stats, pool, launcher, instance: config.metrics.node, suppliers: config.metrics.suppliers });
  registerCacheMetrics(registry, cache);
  registerMetrics(app, registry);
  app.get('/health', async (_req, reply) =>
    shuttingDown ? reply.code(503).send({ status: 'shutting down' }) : { status: 'ok' },
  );

  // public/debug/ is served by src/debug.ts, and only when aggregator.debug is on.
  if (config.demo)
    await app.register(fastifyStatic, { root: PUBLIC_DIR, index: 'index.html', allowedPath: (p) => !/^\/debug(\/|$)/.test(p) });

  return {
    app,
    config,
    pool,
    stats,
    sessions,
    log,
    launcher,
    board,
    async shutdown() {
      shuttingDown = true;
      // Ending a session stops its tasks: each script's group gets SIGTERM, then SIGKILL after
      // timeout.kill (src/processes/runner.ts, in the launcher process).
      for (const actor of sessions.values()) actor.send({ type: 'SHUTDOWN' });
      // Terminates echo sockets, whose scripts are killed the same way, waits for the scripts'
      // tasks to settle and stops the launcher (the onClose hook above).
      await app.close();
    },
  };
}

/** Resolves true once no script of `pool` runs, false after `ms`. */
async function idle(pool: Pool, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (pool.busy > 0) {
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}
