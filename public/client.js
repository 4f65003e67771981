// The aggregator's browser client (docs/protocol.md, docs/client.md): one search per WebSocket, tracked task by task.
// Plain ESM with no dependencies, so a shop's frontend can copy or import it as is.
// Types: client.d.ts next to this file. Usage: docs/client.md.

/** Fields the aggregator adds to every frame; an item is what remains without them. */
export const RESERVED = ['_session', '_task', '_id', '_status', '_error', '_params', '_info', '_parent'];

/**
 * The WebSocket URL of `path` relative to the page (so it also works behind a prefix such as
 * nginx's /ws/): on http://shop/ws/ the search endpoint `ws` is ws://shop/ws/ws.
 */
export function endpoint(path = 'ws', base = globalThis.location && globalThis.location.href) {
  const url = new URL(path, base);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

function itemOf(frame) {
  const item = {};
  for (const key of Object.keys(frame)) if (!RESERVED.includes(key)) item[key] = frame[key];
  return item;
}

function isErrorCode(text) {
  return typeof text === 'string' && /^E_[A-Z_]+$/.test(text);
}

const now = () => (globalThis.performance ? globalThis.performance.now() : Date.now());

/**
 * Starts one search. `request` is an object (sent as JSON) or a string (sent as is).
 * Callbacks: onSent(handle), onFrame(frame), onTask(task, frame), onItem(item, task, frame),
 * onNotice(frame) for E_SESSION_REUSED, onEnd(end). Returns a handle; `handle.done` resolves
 * with the same `end` object that onEnd gets.
 */
export function search(request, options = {}) {
  const WS = options.WebSocket || globalThis.WebSocket;
  const url = options.url || endpoint('ws');
  const call = (name, ...args) => {
    const fn = options[name];
    if (typeof fn !== 'function') return;
    try {
      fn(...args);
    } catch (err) {
      // A bug in the page's callback must not stop the tracking of the search.
      console.error(`aggregator client: ${name} callback failed`, err);
    }
  };
  const started = now();
  const tasks = new Map();
  let session;
  let sessionFrame;
  let items = 0;
  let closedByClient = false;
  let end;
  let resolveDone;
  const done = new Promise((resolve) => (resolveDone = resolve));

  const ws = new WS(url);
  const handle = {
    url,
    tasks,
    done,
    get session() {
      return session;
    },
    get items() {
      return items;
    },
    get end() {
      return end;
    },
    get socket() {
      return ws;
    },
    /** Stops the search: the aggregator drops its queued tasks and kills its scripts. */
    close(code = 1000, reason = 'closed by client') {
      if (end) return;
      closedByClient = true;
      // A socket still connecting cannot send a close frame; it is closed once open.
      if (ws.readyState === 1) ws.close(code, reason);
      else if (ws.readyState === 0) ws.addEventListener('open', () => ws.close(code, reason));
    },
  };

  const onTaskFrame = (frame) => {
    let task = tasks.get(frame._id);
    if (!task) {
      task = { id: frame._id, kind: frame._task, status: 'PENDING', items: 0 };
      if ('_info' in frame) task.info = frame._info;
      if ('_parent' in frame) task.parent = frame._parent;
      tasks.set(task.id, task);
      if (frame._status === 'PENDING') return call('onTask', task, frame);
    }
    if (frame._status === 'SENDING') {
      items++;
      task.items++;
      const first = task.status === 'PENDING';
      task.status = 'SENDING';
      if (first) call('onTask', task, frame);
      call('onItem', itemOf(frame), task, frame);
    } else if (frame._status === 'SUCCESS' || frame._status === 'ERROR') {
      task.status = frame._status;
      if (frame._error) task.error = frame._error;
      call('onTask', task, frame);
    }
  };

  ws.addEventListener('open', () => {
    if (closedByClient) return;
    ws.send(typeof request === 'string' ? request : JSON.stringify(request));
    call('onSent', handle);
  });
  ws.addEventListener('message', (ev) => {
    if (typeof ev.data !== 'string') return;
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== 'object') return;
    if (typeof frame._session === 'string') session = frame._session;
    call('onFrame', frame);
    if (frame._task === 'SESSION') {
      if (frame._error === 'E_SESSION_REUSED') call('onNotice', frame);
      else sessionFrame = frame;
    } else if (typeof frame._id === 'number') {
      onTaskFrame(frame);
    }
  });
  ws.addEventListener('close', (ev) => {
    if (end) return;
    const open = [...tasks.values()].filter((t) => t.status === 'PENDING' || t.status === 'SENDING').length;
    end = {
      status: sessionFrame ? sessionFrame._status : closedByClient ? 'CLOSED' : 'ERROR',
      closeCode: ev.code,
      closeReason: ev.reason,
      closedByClient,
      session,
      ms: Math.round(now() - started),
      tasks: tasks.size,
      openTasks: open,
      items,
    };
    const error = sessionFrame ? sessionFrame._error : !closedByClient && isErrorCode(ev.reason) ? ev.reason : undefined;
    if (error) end.error = error;
    if (sessionFrame && sessionFrame._params) end.params = sessionFrame._params;
    call('onEnd', end);
    resolveDone(end);
  });
  // An 'error' event is always followed by 'close', which reports the end.
  ws.addEventListener('error', () => {});
  return handle;
}

/**
 * The echo check (docs/protocol.md, Echo): sends `input` (an object of strings) as the query of /echo and resolves
 * with the script's answer, {"aggregator": {"php": input}}, or with the error frame.
 */
export function echo(input, options = {}) {
  const WS = options.WebSocket || globalThis.WebSocket;
  const url = new URL(options.url || endpoint('echo'));
  const entries = Object.entries(input);
  for (const [key, value] of entries) url.searchParams.set(key, String(value));
  return new Promise((resolve) => {
    const ws = new WS(url.href);
    let answer;
    // With no query the aggregator waits for the input as the first frame.
    if (entries.length === 0) ws.addEventListener('open', () => ws.send('{}'));
    ws.addEventListener('message', (ev) => {
      try {
        answer = JSON.parse(ev.data);
      } catch {
        answer = ev.data;
      }
    });
    ws.addEventListener('error', () => {});
    ws.addEventListener('close', (ev) => {
      const ok = !!answer && typeof answer === 'object' && 'aggregator' in answer;
      const result = { ok, answer, closeCode: ev.code, closeReason: ev.reason };
      if (!ok) result.error = (answer && answer._error) || (isErrorCode(ev.reason) ? ev.reason : undefined);
      resolve(result);
    });
  });
}
