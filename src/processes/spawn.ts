// The spawn starter: every script a new process (fork + exec) through child_process.spawn.
// Plain spawn, not execa: execa cost about 3x the CPU per start (docs/performance.md), and
// what it adds (buffering, timeout, kill) the runner does itself.
import { spawn } from 'node:child_process';
import type { Command } from '../command.js';
import type { ExitStatus, ScriptStarter, StartResult } from './starter.js';

function start(command: Command, env: NodeJS.ProcessEnv): Promise<StartResult> {
  let sub;
  try {
    // detached: setsid(), so the script leads its own session and process group and a group
    // kill reaches its children.
    sub = spawn(command.file, [...command.args], { detached: true, env, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    return Promise.resolve({ ok: false, reason: String((err as NodeJS.ErrnoException).code ?? err) });
  }
  const { pid, stdin, stdout, stderr } = sub;
  if (pid === undefined) {
    // Not started (ENOENT, EACCES): the reason comes as an 'error' event.
    return new Promise((resolve) => sub.once('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, reason: String(err.code ?? err.message) })));
  }
  // Later errors (a failed kill) must not become an unhandled 'error' event; the runner
  // learns everything it needs from the exit.
  sub.on('error', () => {});
  const exited = new Promise<ExitStatus>((resolve) => sub.once('exit', (code, signal) => resolve({ code, signal })));
  return Promise.resolve({ ok: true, script: { pid, runner: 'spawn', stdin, stdout, stderr, exited } });
}

export const spawnStarter: ScriptStarter = { name: 'spawn', start, close: async () => {} };
