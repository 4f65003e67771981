// Real nginx (/usr/sbin/nginx) for tests: its own prefix, config, pid, logs and temp paths in a
// temp dir, in the foreground (daemon off), on a free loopback port. Stop it in t.teardown.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { livePids } from '../../src/processes/reaper.js';
import { freePort, waitFor } from './harness.js';

export { freePort };

export const NGINX = '/usr/sbin/nginx';


function childrenOf(ppid: number): number[] {
  return livePids((p) => p.stat()?.ppid === ppid);
}

export interface Nginx {
  port: number;
  base: string;
  dir: string;
  child: ChildProcess;
  errorLog(): string;
  stop(): Promise<void>;
}

/** The http { } body is `httpBody(port)`; everything nginx writes stays in a temp dir. */
export async function startNginx(httpBody: (port: number, dir: string) => string): Promise<Nginx> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-nginx-'));
  const port = await freePort();
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((n) => `  ${n}_temp_path ${dir}/${n};`).join('\n');
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    conf,
    [
      // A root master would hand workers to "nobody", who cannot write our temp dir.
      process.getuid?.() === 0 ? 'user root root;' : '',
      'worker_processes 1;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log info;`,
      'events { worker_connections 256; }',
      'http {',
      `  access_log ${dir}/access.log;`,
      temp,
      httpBody(port, dir),
      '}',
      '',
    ].join('\n'),
  );
  const check = spawnSync(NGINX, ['-t', '-q', '-p', dir, '-c', conf], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx -t failed:\n${check.stderr}\n${fs.readFileSync(conf, 'utf8')}`);
  const child = spawn(NGINX, ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let dead = false;
  void exited.then(() => (dead = true));
  const up = await waitFor(
    () =>
      dead ||
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
    5000,
  );
  const errorLog = () => {
    try {
      return fs.readFileSync(path.join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  if (!up || dead) {
    child.kill('SIGKILL');
    throw new Error(`nginx did not start: ${stderr}\n${errorLog()}`);
  }
  return {
    port,
    base: `127.0.0.1:${port}`,
    dir,
    child,
    errorLog,
    async stop() {
      if (!dead) {
        child.kill('SIGTERM'); // fast shutdown: master and workers exit
        const quit = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 3000))]);
        if (!quit) {
          // Workers outlive a SIGKILLed master: kill them by parent pid first.
          for (const w of childrenOf(child.pid ?? -1)) process.kill(w, 'SIGKILL');
          child.kill('SIGKILL');
        }
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
