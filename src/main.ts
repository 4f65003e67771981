#!/usr/bin/env node
// Entry point: read config (SPEC 8), listen, and shut down cleanly on SIGTERM/SIGINT (SPEC 9).
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
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
  const logs = createLogger(config);
  const log = logs.log;
  for (const warning of warnings) log.warn(warning);
  installExitKill();

  const agg = await buildApp(config, log);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, sessions: agg.sessions.size, scripts: agg.pool.busy }, 'shutting down');
    // Never hang: past timeout.kill + 1 s we leave anyway (the exit hook SIGKILLs script groups).
    const deadline = setTimeout(() => process.exit(0), config.timeout.killMs + 1000);
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
