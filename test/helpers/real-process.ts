// The aggregator as an admin runs it: `node dist/main.js` in its own process, real signals.
// Each test gives its scripts a unique tag on their command line (`php -d user_agent=TAG`) so
// processesMatching(TAG) finds exactly its own PHP processes, even with tests in parallel.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, waitFor } from './harness.js';

export const MAIN = path.join(ROOT, 'dist', 'main.js');

export interface RealServer {
  child: ChildProcess;
  pid: number;
  port: number;
  httpBase: string;
  wsBase: string;
  logDir: string;
  tag: string;
  /** stdout + stderr so far. */
  output(): string;
  /** Resolves with the exit code and signal once the process exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** SIGKILLs the process if it still runs (teardown). */
  kill(): void;
}

/** `php -d user_agent=TAG script/NAME.php`: the demo script, findable by TAG. */
export const taggedScript = (name: string, tag: string) =>
  `/usr/bin/php -d display_errors=stderr -d user_agent=${tag} script/${name}.php`;

export function uniqueTag(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Starts dist/main.js on a free port with `-Dkey=value` overrides; waits until it listens. */
export async function startReal(
  overrides: Record<string, string | number> = {},
  opts: { logDir?: string; tag?: string; env?: Record<string, string> } = {},
): Promise<RealServer> {
  const tag = opts.tag ?? uniqueTag('agg');
  const logDir = opts.logDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'agg-real-'));
  const args = Object.entries({
    'server.port': 0,
    'logging.file.path': logDir,
    'aggregator.script.suppliers': taggedScript('suppliers', tag),
    'aggregator.script.items': taggedScript('items', tag),
    ...overrides,
  }).map(([k, v]) => `-D${k}=${String(v)}`);
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, AGGREGATOR_DEMO_DELAY_MS: '0', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  let dead = false;
  void exited.then(() => (dead = true));
  const listening = () => /"address":"http:\/\/127\.0\.0\.1:(\d+)"[^\n]*"msg":"aggregator listening"/.exec(out);
  const ok = await waitFor(() => dead || listening() !== null, 10000);
  const m = listening();
  if (!ok || !m) {
    child.kill('SIGKILL');
    throw new Error(`aggregator did not start:\n${out}`);
  }
  const port = Number(m[1]);
  return {
    child,
    pid: child.pid ?? 0,
    port,
    httpBase: `http://127.0.0.1:${port}`,
    wsBase: `ws://127.0.0.1:${port}`,
    logDir,
    tag,
    output: () => out,
    exited,
    kill: () => {
      if (!dead) child.kill('SIGKILL');
    },
  };
}

/** /stats of a server, or undefined when it does not answer. */
export async function statsOf(base: string): Promise<Record<string, number> | undefined> {
  try {
    return (await (await fetch(`${base}/stats`)).json()) as Record<string, number>;
  } catch {
    return undefined;
  }
}
