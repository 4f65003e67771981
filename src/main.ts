#!/usr/bin/env node
// Entry point: read the configuration (docs/configuration.md), listen, and shut down cleanly on
// SIGTERM/SIGINT (docs/service.md).
import path from 'node:path';
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { ownerTag, reapOrphans } from './processes/reaper.js';

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
  // Every script carries this tag, so the launcher or the next start can find what we left.
  // The instance is the log folder: two instances never share one.
  const instance = path.resolve(config.logging.path);
  const owner = ownerTag(instance);
  const logs = createLogger(config);
  const log = logs.log;
  for (const warning of warnings) log.warn(warning);
  const orphans = reapOrphans(instance);
  if (orphans.length > 0) {
    log.warn({ pids: orphans.map((p) => p.pid), owners: [...new Set(orphans.map((p) => p.owner))] }, 'killed scripts left by a dead aggregator');
  }
  // Scripts are started by a launcher process, which also kills them should we die, even by
  // SIGKILL, which cannot be handled.
  const agg = await buildApp(config, log, { owner, logFile: path.join(instance, config.logging.file) });
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, sessions: agg.sessions.size, scripts: agg.pool.busy }, 'shutting down');
    // Never hang: a shutdown may take timeout.kill + 2 s; at + 1.8 s we leave anyway (the launcher
    // then kills whatever still runs).
    const deadline = setTimeout(() => process.exit(0), config.timeout.killMs + 1800);
    deadline.unref();
    agg
      .shutdown()
      .catch((err: unknown) => log.error({ err }, 'shutdown failed'))
      .then(() => log.info('stopped'))
      .then(() => logs.close())
      .finally(() => process.exit(0));
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
