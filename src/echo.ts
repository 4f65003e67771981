// The proof-of-concept echo (docs/protocol.md, Echo): query parameters (or the first frame's
// JSON object) go to the echo script; its answer comes back wrapped as {"aggregator": ...}.
import type { WebSocket } from 'ws';
import type { Command } from './command.js';
import type { Config } from './config-types.js';
import { type ErrorCode, NORMAL_CLOSE, closeCodeFor } from './errors.js';
import { sessionFrame } from './frames.js';
import { type JsonObject, isObject, parseJson } from './json.js';
import type { Logger } from './logger.js';
import type { Pool } from './pool.js';
import type { RunScript } from './processes/protocol.js';

export interface EchoDeps {
  readonly config: Config;
  readonly pool: Pool;
  readonly command: Command;
  readonly log: Logger;
  readonly run: RunScript;
}

let echoSeq = 0;

export function openEcho(socket: WebSocket, query: Record<string, string>, deps: EchoDeps): void {
  const id = `echo-${++echoSeq}`;
  const log = deps.log.child({ session: id });
  const abort = new AbortController();
  let started = false;
  const fail = (code: ErrorCode) => {
    if (socket.readyState !== socket.OPEN) return;
    socket.send(JSON.stringify(sessionFrame(id, { code })));
    socket.close(closeCodeFor(code), code);
  };
  const run = (input: JsonObject) => {
    started = true;
    void deps.pool.run(
      id,
      async () => {
        const res = await deps.run({
          command: deps.command,
          input: JSON.stringify(input),
          timeoutMs: deps.config.timeout.scriptMs,
          killAfterMs: deps.config.timeout.killMs,
          maxOutputBytes: deps.config.limit.outputSizeBytes,
          env: { AGGREGATOR_SESSION: id, AGGREGATOR_TASK_ID: '0' },
          signal: abort.signal,
          log,
        });
        if (abort.signal.aborted) return;
        if (!res.ok) {
          log.info({ code: res.code, reason: res.reason }, 'echo script failed');
          return fail(res.code);
        }
        const parsed = parseJson(res.stdout);
        if (!parsed) {
          log.info('echo script answered with something that is not JSON');
          return fail('E_SCRIPT_ERROR');
        }
        if (socket.readyState !== socket.OPEN) return;
        socket.send(JSON.stringify({ aggregator: parsed.value }));
        socket.close(NORMAL_CLOSE, '');
      },
      abort.signal,
    );
  };
  socket.on('close', () => abort.abort());
  socket.on('error', (err) => log.warn({ err: err.message }, 'socket error'));
  if (Object.keys(query).length > 0) {
    run(query);
    return;
  }
  socket.on('message', (data, isBinary) => {
    if (started) return;
    const parsed = isBinary ? undefined : parseJson(String(data));
    if (!parsed) return fail('E_REQUEST_JSON');
    if (!isObject(parsed.value)) return fail('E_ILLEGAL_REQUEST');
    run(parsed.value);
  });
}
