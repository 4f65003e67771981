#!/usr/bin/env node
// Entry point: read config (SPEC 8), listen, and shut down cleanly on SIGTERM/SIGINT (SPEC 9).
import path from 'node:path';
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { startGuardian } from './guardian-link.js';
import { LOG_FILE, createLogger } from './logger.js';
import { OWNER_ENV, ownerTag, reapOrphans } from './orphans.js';
import { installExitKill } from './process-groups.js';

async function main(): Promise<void> {
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd() });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`aggregator: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const { config, warnings } = loaded;
  // Every script inherits this tag, so the guardian or the next start can find what we left.
  // The instance is the log folder: two instances never share one.
  const instance = path.resolve(config.logging.path);
  const owner = ownerTag(instance);
  process.env[OWNER_ENV] = owner;
  const logs = createLogger(config);
  const log = logs.log;
  for (const warning of warnings) log.warn(warning);
  installExitKill();
  const orphans = reapOrphans(instance);
  if (orphans.length > 0) {
    log.warn({ pids: orphans.map((p) => p.pid), owners: [...new Set(orphans.map((p) => p.owner))] }, 'killed scripts left by a dead aggregator');
  }
  // SIGKILL cannot be handled: a guardian process kills our scripts if we die (SPEC 9).
  const guardian = startGuardian({ killMs: config.timeout.killMs, owner, logFile: path.join(instance, LOG_FILE), log });

  const agg = await buildApp(config, log);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, sessions: agg.sessions.size, scripts: agg.pool.busy }, 'shutting down');
    // Never hang: SPEC 9 allows timeout.kill + 2 s; at + 1.8 s we leave anyway (the exit hook
    // SIGKILLs script groups; the guardian kills whatever is still registered with it).
    const deadline = setTimeout(() => process.exit(0), config.timeout.killMs + 1800);
    deadline.unref();
    agg
      .shutdown()
      .catch((err: unknown) => log.error({ err }, 'shutdown failed'))
      .then(() => log.info('stopped'))
      .then(() => logs.close())
      .finally(() => {
        guardian.stop();
        process.exit(0);
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  const address = await agg.app.listen({ port: config.server.port, host: config.server.address });
  log.info({ address, pool: config.pool.executor, order: config.pool.order }, 'aggregator listening');
}

main().catch((err: unknown) => {
  process.stderr.write(`aggregator: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
