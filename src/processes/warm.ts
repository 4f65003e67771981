// The warm starter: PHP scripts forked from a preloaded PHP parent (src/processes/warm-parent.php)
// instead of exec'ed cold, for commands `PHP [-d key=value ...] script.php [args]`. A PHP start is
// 30-40 ms of CPU here; a warm fork with the same script is a few ms. One parent per program +
// -d options (+ the launcher's run-tag owner): options that only work at start-up are the
// parent's own. The parent starts on the first task (which waits for it), reports every child's
// exit status, and is replaced after it dies (at most MAX_STARTS starts per key a minute; past
// that the starter's fallback, spawn, runs the key's scripts, or start() fails without one).
//
// The child's stdin, stdout and stderr are unix sockets connected to a listener here (in a
// 0700 directory) by the parent before it forks, each introduced by the task's random token:
// the same kind of descriptor as a spawned script's stdio (libuv makes socketpairs), with the
// same EOF rules. The parent reports each child's pid and exit status over its own stdio (its
// stdin for requests, fd 3 for replies): no other way into it exists.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from '../command.js';
import { PACKAGE_ROOT } from '../paths.js';
import { TAG_ENV as RUN_ENV, killGroup } from './reaper.js';
import type { ExitStatus, ScriptStarter, StartResult, StartedScript } from './starter.js';

/** Per task, not the parent's: the parent starts with the first task's environment without these. */
const TASK_ENV = ['AGGREGATOR_SESSION', 'AGGREGATOR_TASK_ID', RUN_ENV];
/** Environment that changes which php.ini PHP reads: part of a parent's identity. */
const INI_ENV = ['PHPRC', 'PHP_INI_SCAN_DIR'];
/** -d keys warm cannot honour: the parent would run user code, or the mechanism needs them. */
const REFUSED_KEYS = new Set(['auto_prepend_file', 'auto_append_file', 'opcache.preload']);
/**
 * What the parent runs with on top of the user's options (which come later and win): opcache
 * shared by all children, an edited script seen by its next task.
 */
const WARM_INI = ['opcache.enable_cli=1', 'opcache.validate_timestamps=1', 'opcache.revalidate_freq=0'];
const PLACEHOLDER_LENGTH = 1536;
/** Room left in the parent's environment block for a task's own variables (/proc/PID/environ). */
const ENV_PAD = 4096;
const MAX_STARTS = 5;
const START_WINDOW_MS = 60_000;
const TOKEN_BYTES = 16;
const HELLO_BYTES = TOKEN_BYTES * 2 + 1;

export type WarmEligibility = { ok: true; key: string; reason: string; program: string; options: string[] } | { ok: false; reason: string };

/** warm-parent.php beside this module (the build copies it to dist/), else in the sources. */
export function warmParentFile(): string {
  const beside = fileURLToPath(new URL('./warm-parent.php', import.meta.url));
  return fs.existsSync(beside) ? beside : path.join(PACKAGE_ROOT, 'src', 'processes', 'warm-parent.php');
}

function placeholder(): string {
  const head = `/nonexistent/aggregator-warm-${crypto.randomBytes(8).toString('hex')}/`;
  return head + 'x'.repeat(PLACEHOLDER_LENGTH - head.length);
}

/** The program as spawn would find it: PATH for a bare name, else relative to the cwd. */
function resolveProgram(file: string, env: NodeJS.ProcessEnv): string | undefined {
  const candidates = file.includes('/')
    ? [path.resolve(file)]
    : (env.PATH ?? '').split(':').map((dir) => path.resolve(dir || '.', file));
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return fs.realpathSync(c);
    } catch {
      // next
    }
  }
  return undefined;
}

interface Split {
  options: string[];
  script: string;
  scriptArgs: string[];
}

/** `-d k=v` / `-dk=v` options, then the script; anything else is not for warm. */
function splitArgs(args: readonly string[]): Split | string {
  const options: string[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i] as string;
    if (!a.startsWith('-')) break;
    const setting = a === '-d' ? args[++i] : a.startsWith('-d') ? a.slice(2) : undefined;
    if (setting === undefined) return a === '-d' ? 'option -d without a value' : `option ${a} is not supported by warm (only -d key=value)`;
    const eq = setting.indexOf('=');
    if (eq <= 0) return `option -d ${setting} has no value`;
    const key = setting.slice(0, eq).trim();
    if (REFUSED_KEYS.has(key)) return `-d ${key} is not supported by warm`;
    options.push(setting);
  }
  const script = args[i];
  if (script === undefined) return 'no script path';
  return { options, script, scriptArgs: args.slice(i + 1) };
}

function runPhp(program: string, args: string[]): { out: string; err: string } {
  const r = spawnSync(program, args, { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

const probes = new Map<string, { ok: true } | { ok: false; reason: string }>();

/** Runs this PHP with these options once: settings warm cannot honour, then the parent's own probe. */
function probe(program: string, options: string[]): { ok: true } | { ok: false; reason: string } {
  const key = [program, ...options].join('\0');
  const cached = probes.get(key);
  if (cached) return cached;
  const dOpts = options.flatMap((o) => ['-d', o]);
  let result: { ok: true } | { ok: false; reason: string };
  const ini = runPhp(program, [
    ...dOpts,
    '-r',
    'echo json_encode(["sapi" => PHP_SAPI, "prepend" => ini_get("auto_prepend_file"), "append" => ini_get("auto_append_file"), "preload" => ini_get("opcache.preload")]);',
  ]);
  let facts: { sapi?: string; prepend?: string; append?: string; preload?: string } = {};
  try {
    facts = JSON.parse(ini.out) as typeof facts;
  } catch {
    // reported below
  }
  if (facts.sapi !== 'cli') result = { ok: false, reason: `PHP does not run as a CLI (${(ini.err || ini.out).trim().slice(0, 200)})` };
  else if (facts.prepend) result = { ok: false, reason: `PHP has auto_prepend_file=${facts.prepend}` };
  else if (facts.append) result = { ok: false, reason: `PHP has auto_append_file=${facts.append}` };
  else if (facts.preload) result = { ok: false, reason: `PHP has opcache.preload=${facts.preload}` };
  else {
    const p = runPhp(program, [...parentArgs(options, placeholder()), 'probe']);
    try {
      const res = JSON.parse(p.out) as { ok: boolean; reason?: string };
      result = res.ok ? { ok: true } : { ok: false, reason: res.reason ?? 'probe failed' };
    } catch {
      result = { ok: false, reason: `probe failed: ${(p.err || p.out).trim().slice(0, 200)}` };
    }
  }
  probes.set(key, result);
  return result;
}

function parentArgs(options: string[], holder: string): string[] {
  return [...[...WARM_INI, ...options, `auto_append_file=${holder}`].flatMap((o) => ['-d', o]), warmParentFile()];
}

/**
 * Whether a command runs warm, and why (for the start-up log line). Probes the PHP once per
 * program + options (synchronously: call it at start-up for the configured scripts).
 */
export function warmEligibility(command: Command, env: NodeJS.ProcessEnv = process.env): WarmEligibility {
  const key = [command.file, ...command.args, env.PATH ?? ''].join('\0');
  let e = eligibility.get(key);
  if (!e) eligibility.set(key, (e = decide(command, env)));
  return e;
}

const eligibility = new Map<string, WarmEligibility>();

function decide(command: Command, env: NodeJS.ProcessEnv): WarmEligibility {
  const program = resolveProgram(command.file, env);
  if (program === undefined) return { ok: false, reason: `spawn: program ${command.file} not found` };
  if (!/^php(\d+(\.\d+)*)?$/.test(path.basename(program))) return { ok: false, reason: `spawn: program is ${program}, not PHP` };
  const split = splitArgs(command.args);
  if (typeof split === 'string') return { ok: false, reason: `spawn: ${split}` };
  // The child writes the script's real path where the placeholder was.
  let real = path.resolve(split.script);
  try {
    real = fs.realpathSync(real);
  } catch {
    // not there (yet): the child answers as the CLI does
  }
  if (real.length >= PLACEHOLDER_LENGTH) return { ok: false, reason: `spawn: script path longer than ${PLACEHOLDER_LENGTH - 1} bytes` };
  const p = probe(program, split.options);
  if (!p.ok) return { ok: false, reason: `spawn: ${p.reason}` };
  const with_ = split.options.length > 0 ? ` with ${split.options.map((o) => `-d ${o}`).join(' ')}` : '';
  return { ok: true, key: [program, ...split.options].join('\0'), program, options: split.options, reason: `warm: ${command.file}${with_}` };
}

export interface WarmOptions {
  /** Runs what warm cannot (not eligible, or a parent that keeps dying); without it, start() fails. */
  fallback?: ScriptStarter;
  /** Parent life events worth a warning (death, unfit, over its start budget) for the log. */
  log?: (msg: string, obj: Record<string, unknown>) => void;
  /** A parent was started to replace one that died; `restarts` counts them all so far. */
  onRestart?: (restarts: number) => void;
  maxStarts?: number;
  startWindowMs?: number;
}

interface Task {
  id: number;
  token: string;
  parent: WarmParent;
  pid?: number;
  sockets: (net.Socket | undefined)[];
  started: boolean;
  /** Its exit was reported (possibly before its stdio connections were seen here). */
  ended?: boolean;
  resolveStart(r: StartResult): void;
  resolveExit?(s: ExitStatus): void;
  exited?: Promise<ExitStatus>;
}

type Reply =
  | { t: 'ready'; pid: number }
  | { t: 'started'; id: number; pid: number }
  | { t: 'failed'; id: number; reason: string }
  | { t: 'exit'; pid: number; code?: number; signal?: number; fast?: boolean };

// A number's first name, as Node reports a spawned child's signal (6 is SIGABRT, not SIGIOT).
const SIGNAL_NAMES = new Map<number, NodeJS.Signals>();
for (const [name, n] of Object.entries(os.constants.signals)) if (!SIGNAL_NAMES.has(n)) SIGNAL_NAMES.set(n, name as NodeJS.Signals);

/** A child's group, and the child itself should it not lead one yet (between fork and setsid). */
function killChild(pid: number): void {
  killGroup(pid, 'SIGKILL');
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

let parentSeq = 0;

const DIR_PREFIX = 'aggregator-warm-';

/** Listener directories of this user's starters whose process is gone (killed before close()). */
function removeStaleDirs(): void {
  const tmp = os.tmpdir();
  let names: string[];
  try {
    names = fs.readdirSync(tmp);
  } catch {
    return;
  }
  for (const name of names) {
    const m = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // its starter may still run
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    const dir = path.join(tmp, name);
    try {
      if (fs.statSync(dir).uid === process.getuid?.()) fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // gone meanwhile, or not ours
    }
  }
}

/** One warm-parent.php process. */
class WarmParent {
  /** Settles once the parent serves (undefined), or with why it cannot and whether that lasts. */
  readonly ready: Promise<{ reason: string; unfit: boolean } | undefined>;
  dead = false;
  private readonly proc: ChildProcess;
  private readonly tasks = new Map<number, Task>();
  private readonly byPid = new Map<number, Task>();
  private seq = 0;
  private stderrTail = '';

  constructor(
    private readonly starter: WarmStarter,
    elig: Extract<WarmEligibility, { ok: true }>,
    /** The program as the first task's command names it (its children's /proc/PID/comm). */
    file: string,
    taskEnv: NodeJS.ProcessEnv,
    owner: string,
    socketPath: string,
  ) {
    const env: NodeJS.ProcessEnv = { ...taskEnv };
    for (const k of TASK_ENV) delete env[k];
    // A run id starting with '-' is never swept, but the owner prefix finds it after a crash.
    if (owner !== '') env[RUN_ENV] = `${owner}:-warm-${process.pid}-${++parentSeq}`;
    env.AGGREGATOR_WARM_PAD = '_'.repeat(ENV_PAD);
    this.proc = spawn(file, [...parentArgs(elig.options, placeholder()), 'serve', socketPath], {
      env,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    const { proc } = this;
    proc.stdin?.on('error', () => {});
    for (const s of [proc.stdout, proc.stderr]) {
      s?.setEncoding('utf8');
      s?.on('data', (chunk: string) => {
        this.stderrTail = (this.stderrTail + chunk).slice(-2000);
        starter.log('warm parent output', { pid: proc.pid, output: chunk.trimEnd().slice(0, 2000) });
      });
    }
    const ctl = proc.stdio[3] as net.Socket;
    let ready!: (err: { reason: string; unfit: boolean } | undefined) => void;
    this.ready = new Promise((resolve) => (ready = resolve));
    let buf = '';
    ctl.setEncoding('utf8');
    ctl.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let msg: Reply;
        try {
          msg = JSON.parse(line) as Reply;
        } catch {
          continue;
        }
        if (msg.t === 'ready') ready(undefined);
        else this.onReply(msg);
      }
    });
    ctl.on('error', () => {});
    proc.on('error', (err) => ready({ reason: String(err), unfit: true }));
    proc.once('exit', (code, signal) => {
      this.dead = true;
      // Exit code 3: this PHP cannot run warm (its own probe said why); anything else may pass.
      ready({ reason: `warm parent exited (${signal ?? code}) before it was ready: ${this.stderrTail.trim().slice(-500)}`, unfit: code === 3 });
      this.onDeath(signal ?? String(code));
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): number {
    return this.tasks.size;
  }

  run(command: Command, split: Split, env: NodeJS.ProcessEnv): Promise<StartResult> {
    const id = ++this.seq;
    const token = crypto.randomBytes(TOKEN_BYTES).toString('hex');
    return new Promise<StartResult>((resolveStart) => {
      const task: Task = { id, token, parent: this, sockets: [], started: false, resolveStart };
      this.tasks.set(id, task);
      this.starter.tokens.set(token, task);
      const envList: string[] = [];
      for (const [k, v] of Object.entries(env)) if (v !== undefined) envList.push(`${k}=${v}`);
      const req = {
        t: 'run',
        id,
        token,
        self: split.script,
        argv: [split.script, ...split.scriptArgs],
        cmdline: [command.file, ...command.args],
        env: envList,
      };
      this.proc.stdin?.write(`${JSON.stringify(req)}\n`);
    });
  }

  /** A connection introduced by one of this parent's tasks. */
  attach(task: Task, which: number, socket: net.Socket): void {
    if (task.sockets[which] || task.started) {
      socket.destroy();
      return;
    }
    task.sockets[which] = socket;
    this.maybeStarted(task);
  }

  private maybeStarted(task: Task): void {
    const [stdin, stdout, stderr] = task.sockets;
    if (task.started || task.pid === undefined || !stdin || !stdout || !stderr) return;
    task.started = true;
    this.starter.tokens.delete(task.token);
    if (task.ended) this.tasks.delete(task.id);
    // What the script writes to its own stdin (a socket, as with spawn) is not kept.
    stdin.on('data', () => {});
    for (const s of task.sockets) s?.on('error', () => {});
    const script: StartedScript = { pid: task.pid, runner: 'warm', stdin, stdout, stderr, exited: task.exited as Promise<ExitStatus> };
    task.resolveStart({ ok: true, script });
  }

  private onReply(msg: Exclude<Reply, { t: 'ready' }>): void {
    if (msg.t === 'started') {
      const task = this.tasks.get(msg.id);
      if (!task) return;
      task.pid = msg.pid;
      this.byPid.set(msg.pid, task);
      task.exited = new Promise((resolve) => (task.resolveExit = resolve));
      this.maybeStarted(task);
    } else if (msg.t === 'failed') {
      const task = this.tasks.get(msg.id);
      if (task) this.finish(task, undefined, `warm parent could not fork: ${msg.reason}`);
    } else if (msg.t === 'exit') {
      const task = this.byPid.get(msg.pid);
      if (!task) return;
      this.byPid.delete(msg.pid);
      task.ended = true;
      if (msg.fast) this.starter.fastExits++;
      else this.starter.slowExits++;
      task.resolveExit?.(
        msg.signal !== undefined ? { code: null, signal: SIGNAL_NAMES.get(msg.signal) ?? 'SIGKILL' } : { code: msg.code ?? null, signal: null },
      );
      // Its stdio was connected before the fork: if not seen yet, it will be (maybeStarted).
      if (task.started) this.tasks.delete(task.id);
    }
  }

  /** The task's process is gone: settle what is still open. */
  private finish(task: Task, status: ExitStatus | undefined, reasonIfNotStarted: string): void {
    this.tasks.delete(task.id);
    if (task.pid !== undefined) this.byPid.delete(task.pid);
    this.starter.tokens.delete(task.token);
    if (!task.started) {
      for (const s of task.sockets) s?.destroy();
      if (task.pid !== undefined) killChild(task.pid);
      task.resolveStart({ ok: false, reason: reasonIfNotStarted });
    }
    task.resolveExit?.(status ?? { code: null, signal: null, lost: reasonIfNotStarted });
  }

  private onDeath(how: string): void {
    const lost = `warm parent ${String(this.proc.pid)} died (${how})`;
    for (const task of [...this.tasks.values()]) {
      // Its children die with it (PR_SET_PDEATHSIG); their groups are killed here too.
      if (task.pid !== undefined) killChild(task.pid);
      this.finish(task, { code: null, signal: null, lost }, lost);
    }
    this.starter.parentDied(this, how);
  }

  /** Ends the control channel: the parent SIGKILLs its children's groups and exits. */
  stop(): Promise<void> {
    if (this.dead) return Promise.resolve();
    return new Promise((resolve) => {
      const force = setTimeout(() => this.proc.kill('SIGKILL'), 2000);
      this.proc.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      this.proc.stdin?.end();
    });
  }

  /** For tests: the parent as a process. */
  kill(signal: NodeJS.Signals): void {
    this.proc.kill(signal);
  }
}

interface KeyState {
  parent?: WarmParent;
  starts: number[];
  /** Why this key no longer runs warm (its parent found its PHP unfit). */
  off?: string;
  /** Over its start budget (logged once). */
  overBudget?: boolean;
}

export class WarmStarter implements ScriptStarter {
  readonly name = 'warm' as const;
  /** Parents started to replace one that died. */
  restarts = 0;
  /** Scripts ended at PHP's module shutdown (status read there), and those that ran PHP's whole exit. */
  fastExits = 0;
  slowExits = 0;
  /** @internal token -> task, for connections to the stdio listener. */
  readonly tokens = new Map<string, Task>();
  private readonly keys = new Map<string, KeyState>();
  private server?: net.Server;
  private dir?: string;
  private listening?: Promise<string>;
  private closed = false;
  private readonly maxStarts: number;
  private readonly windowMs: number;

  constructor(private readonly opts: WarmOptions = {}) {
    this.maxStarts = opts.maxStarts ?? MAX_STARTS;
    this.windowMs = opts.startWindowMs ?? START_WINDOW_MS;
  }

  /** @internal */
  log(msg: string, obj: Record<string, unknown>): void {
    this.opts.log?.(msg, obj);
  }

  /** The stdio listener's socket (in a 0700 directory), once a parent has started. */
  get stdioSocket(): string | undefined {
    return this.dir === undefined ? undefined : path.join(this.dir, 's');
  }

  /** Live warm parents (tests, /debug). */
  parents(): { key: string; pid: number | undefined; running: number }[] {
    return [...this.keys.entries()].flatMap(([key, s]) => (s.parent && !s.parent.dead ? [{ key, pid: s.parent.pid, running: s.parent.running }] : []));
  }

  async start(command: Command, env: NodeJS.ProcessEnv): Promise<StartResult> {
    if (this.closed) return { ok: false, reason: 'warm starter closed' };
    const elig = warmEligibility(command, env);
    if (!elig.ok) return this.fallback(command, env, elig.reason);
    const split = splitArgs(command.args) as Split;
    const run = env[RUN_ENV] ?? '';
    const owner = run.includes(':') ? run.slice(0, run.lastIndexOf(':')) : '';
    const key = [elig.key, owner, ...INI_ENV.map((k) => env[k] ?? '')].join('\0');
    // Before looking at the key's parent: from here to its creation nothing may wait, or two
    // first tasks would start two parents.
    const socketPath = await this.listen();
    if (this.closed) return { ok: false, reason: 'warm starter closed' };
    let state = this.keys.get(key);
    if (!state) this.keys.set(key, (state = { starts: [] }));
    if (state.off) return this.fallback(command, env, state.off);
    let parent = state.parent;
    if (!parent || parent.dead) {
      const now = Date.now();
      state.starts = state.starts.filter((t) => now - t < this.windowMs);
      if (state.starts.length >= this.maxStarts) {
        const why = `warm parent for ${command.line} started ${state.starts.length} times in ${this.windowMs / 1000} s`;
        if (!state.overBudget) this.log(`${why}: ${this.opts.fallback ? 'its scripts run with spawn for now' : 'its scripts fail to start for now'}`, {});
        state.overBudget = true;
        return this.fallback(command, env, why);
      }
      const replacing = parent !== undefined;
      if (replacing) this.restarts++;
      state.starts.push(now);
      parent = new WarmParent(this, elig, command.file, env, owner, socketPath);
      state.overBudget = false;
      state.parent = parent;
      if (replacing) this.opts.onRestart?.(this.restarts);
    }
    const notReady = await parent.ready;
    if (notReady?.unfit) {
      // A PHP that passed the probe but whose parent finds it unfit: not retried for this key.
      if (state.parent === parent) state.off = `warm parent unusable: ${notReady.reason}`;
      this.log('warm parent unusable', { command: command.line, reason: notReady.reason });
      return this.fallback(command, env, state.off ?? notReady.reason);
    }
    if (parent.dead) return this.start(command, env);
    return parent.run(command, split, env);
  }

  /** @internal */
  parentDied(parent: WarmParent, how: string): void {
    if (!this.closed) this.log('warm parent died', { pid: parent.pid, how });
  }

  private fallback(command: Command, env: NodeJS.ProcessEnv, reason: string): Promise<StartResult> {
    return this.opts.fallback ? this.opts.fallback.start(command, env) : Promise.resolve({ ok: false, reason });
  }

  /** The stdio listener: a unix socket in a fresh 0700 directory. */
  private listen(): Promise<string> {
    this.listening ??= new Promise((resolve, reject) => {
      removeStaleDirs();
      this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `${DIR_PREFIX}${process.pid}-`));
      const file = path.join(this.dir, 's');
      const server = net.createServer((socket) => this.onConnection(socket));
      this.server = server;
      server.once('error', reject);
      server.listen(file, () => resolve(file));
    });
    return this.listening;
  }

  private onConnection(socket: net.Socket): void {
    socket.on('error', () => {});
    const hello = () => {
      const head = socket.read(HELLO_BYTES) as Buffer | null;
      if (head === null) return;
      socket.off('readable', hello);
      const task = this.tokens.get(head.toString('latin1', 0, TOKEN_BYTES * 2));
      const which = head[TOKEN_BYTES * 2]! - 48;
      if (!task || which < 0 || which > 2) socket.destroy();
      else task.parent.attach(task, which, socket);
    };
    socket.on('readable', hello);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.keys.values()].map((s) => s.parent?.stop()));
    // No new connections; those of started scripts are their runners' (close() does not wait
    // for them: a stream nobody reads would never end).
    this.server?.close();
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
