// The baseline process: plain `node`, nothing but this file, bare.ts and ws loaded, so its
// spawns are as cheap as a lean Node program's (fork() cost grows with the parent's memory,
// and the runner carries the TypeScript loader). Driven over IPC by baseline.ts.
import fs from 'node:fs';
import { WebSocketServer } from 'ws';
import { type BareScripts, type SearchesJob, bareSearches, runCommand, runPhp } from './bare.js';

export type BaselineRequest =
  | { id: number; op: 'searches'; scripts: BareScripts; job: SearchesJob }
  | { id: number; op: 'php'; scripts: BareScripts; script: 'suppliers' | 'items'; line: string }
  | { id: number; op: 'command'; argv: string[]; line: string }
  | { id: number; op: 'serve'; file: string };

/** A bare `ws` server that answers a socket's first message with the frames in `file`. */
function serveFrames(file: string): Promise<number> {
  const frames = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  wss.on('connection', (ws) => {
    ws.once('message', () => {
      for (const frame of frames) ws.send(frame);
      ws.close(1000);
    });
  });
  return new Promise((resolve) =>
    wss.on('listening', () => {
      const addr = wss.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : 0);
    }),
  );
}

async function handle(req: BaselineRequest): Promise<unknown> {
  switch (req.op) {
    case 'searches':
      return bareSearches(req.job, req.scripts);
    case 'php': {
      const run = await runPhp(req.scripts.php, req.scripts[req.script], req.line);
      return { ms: run.ms, code: run.code, bytes: run.stdout.length };
    }
    case 'command': {
      const run = await runCommand(req.argv, req.line);
      return { ms: run.ms, code: run.code, bytes: run.stdout.length };
    }
    case 'serve':
      return { port: await serveFrames(req.file) };
  }
}

process.on('message', (req: BaselineRequest) => {
  handle(req).then(
    (result) => process.send?.({ id: req.id, result }),
    (err: unknown) => process.send?.({ id: req.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
