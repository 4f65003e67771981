// Builds the Fastify app (no listen, so tests can start it on port 0): the search and echo
// WebSockets, /stats, /health, the demo page. Owns the pool, the counters and the live sessions.
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { SessionActor } from '../machines/session.js';
import { parseCommand } from './command.js';
import type { Config } from './config-types.js';
import { openEcho } from './echo.js';
import type { Logger } from './logger.js';
import { Pool } from './pool.js';
import { killAllGroups } from './process-groups.js';
import { PUBLIC_DIR } from './paths.js';
import { openSession } from './session.js';
import { Stats } from './stats.js';

export interface Aggregator {
  readonly app: FastifyInstance;
  readonly config: Config;
  readonly pool: Pool;
  readonly stats: Stats;
  readonly sessions: Map<string, SessionActor>;
  readonly log: Logger;
  /** Ends every search with E_SERVER_SHUTDOWN, kills every script group, closes the server. */
  shutdown(): Promise<void>;
}

export async function buildApp(config: Config, log: Logger): Promise<Aggregator> {
  const pool = new Pool(config.pool.executor, config.pool.order);
  const stats = new Stats(pool);
  const sessions = new Map<string, SessionActor>();
  const commands = { suppliers: parseCommand(config.script.suppliers), items: parseCommand(config.script.items) };
  const echoCommand = parseCommand(config.script.echo);
  let taskSeq = 0;
  let shuttingDown = false;

  const app: FastifyInstance = Fastify({
    loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger,
    disableRequestLogging: true,
  });
  await app.register(fastifyWebsocket, {
    options: { maxPayload: config.limit.requestSizeBytes },
    // Sessions are closed by shutdown() with E_SERVER_SHUTDOWN first; this only drops stragglers.
    preClose: function (this: FastifyInstance, done) {
      for (const client of this.websocketServer.clients) client.terminate();
      this.websocketServer.close(() => done());
    },
  });

  const allowed = config.server.allowedOrigins;
  const checkOrigin = async (req: FastifyRequest, reply: FastifyReply) => {
    if (allowed && !allowed.includes(String(req.headers.origin ?? ''))) {
      log.warn({ origin: req.headers.origin ?? null, url: req.url }, 'WebSocket origin refused');
      return reply.code(403).send({ error: 'origin not allowed' });
    }
  };

  app.get('/ws', { websocket: true, preValidation: checkOrigin }, (socket) => {
    if (shuttingDown) return socket.close(1001, 'E_SERVER_SHUTDOWN');
    if (sessions.size >= config.limit.sessions) {
      log.warn({ limit: config.limit.sessions }, 'too many sessions');
      return socket.close(1013, 'E_TOO_MANY_SESSIONS');
    }
    openSession(socket, { config, pool, stats, commands, log, sessions, nextTaskId: () => ++taskSeq });
  });

  app.get('/echo', { websocket: true, preValidation: checkOrigin }, (socket, req) => {
    openEcho(socket, req.query as Record<string, string>, { config, pool, command: echoCommand, log });
  });

  app.get('/stats', async () => stats.toJSON());
  app.get('/health', async (_req, reply) =>
    shuttingDown ? reply.code(503).send({ status: 'shutting down' }) : { status: 'ok' },
  );

  if (config.demo) await app.register(fastifyStatic, { root: PUBLIC_DIR, index: 'index.html' });

  return {
    app,
    config,
    pool,
    stats,
    sessions,
    log,
    async shutdown() {
      shuttingDown = true;
      for (const actor of sessions.values()) actor.send({ type: 'SHUTDOWN' });
      killAllGroups('SIGTERM');
      const kill = setTimeout(() => killAllGroups('SIGKILL'), config.timeout.killMs);
      await app.close();
      clearTimeout(kill);
      killAllGroups('SIGKILL');
    },
  };
}
