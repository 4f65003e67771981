// Real redis-server (Debian's package, installed by `bin/setup test`) for tests: in the
// foreground on a free loopback port, nothing on disk (no RDB, no AOF, its dir a temp dir).
// It can be killed, paused (SIGSTOP: connections stay open, nothing answers) and started
// again on the same port. Stop it in t.teardown. A missing redis-server fails the test with
// a message saying how to install it: no test is skipped for it.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from './harness.js';

export { freePort };

/** redis-server on PATH, else Debian's path. */
export function redisServerPath(): string {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/usr/sbin']) {
    if (!dir) continue;
    const file = path.join(dir, 'redis-server');
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  throw new Error('redis-server not found: the Redis tests need it. Run `bin/setup test` (or `apt-get install redis-server`).');
}

/** True when something on `port` answers PING with +PONG within `ms`. */
export function redisPing(port: number, ms = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
  });
}

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:PORT/0 */
  readonly url: string;
  /** The running redis-server (a new one after start()). */
  readonly child: ChildProcess;
  /** SIGKILL: connections drop at once, nothing is saved. Resolves once it exited. */
  kill(): Promise<void>;
  /** Starts redis-server again on the same port (empty: nothing was saved); waits for PONG. */
  start(): Promise<void>;
  /** SIGSTOP: the port still accepts connections, nothing answers. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** redis-server's stdout + stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

const exitOf = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

export async function startRedis(): Promise<RedisServer> {
  const bin = redisServerPath();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-redis-'));
  const port = await freePort();
  let out = '';
  let child: ChildProcess | undefined;
  let paused = false;

  const launch = async () => {
    const c = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    c.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    let dead = false;
    void exitOf(c).then(() => (dead = true));
    // Polled with a real PING: the port may accept connections before Redis is ready.
    const up = await waitFor(async () => dead || (await redisPing(port)), 10_000);
    if (!up || dead) {
      c.kill('SIGKILL');
      throw new Error(`redis-server did not start on port ${port}:\n${out}`);
    }
  };
  await launch();

  const current = () => {
    if (!child) throw new Error('redis-server was never started');
    return child;
  };
  const kill = async () => {
    const c = current();
    c.kill('SIGKILL');
    paused = false;
    await exitOf(c);
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    get child() {
      return current();
    },
    kill,
    async start() {
      const c = current();
      if (c.exitCode === null && c.signalCode === null) throw new Error('redis-server still runs: kill() it first');
      await launch();
    },
    pause() {
      current().kill('SIGSTOP');
      paused = true;
    },
    resume() {
      current().kill('SIGCONT');
      paused = false;
    },
    output: () => out,
    async stop() {
      const c = current();
      if (c.exitCode === null && c.signalCode === null) {
        if (paused) c.kill('SIGCONT');
        c.kill('SIGTERM'); // with --save '' Redis exits at once, writing nothing
        const quit = await Promise.race([exitOf(c).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
        if (!quit) await kill();
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
