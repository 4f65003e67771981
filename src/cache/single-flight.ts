// Identical runs at the same time share one run (issue 13: two searches for the same part
// at the same supplier, in one session or in two, start one items script, not two). The
// first caller of a key starts `run`; callers of the same key while it runs wait for the
// same result. Each caller's AbortSignal detaches only that caller (its promise rejects at
// once with the signal's reason); the shared run is aborted only when every caller has
// detached, and is then forgotten, so a later caller starts afresh rather than joining a
// run that is being torn down. The entry goes when the run settles, success or failure:
// nothing is remembered (that is the cache's job).
// A run may report that it has really started (its script got a process): every caller
// waiting for it, and every caller joining it later, hears of it once (onStarted), so a task
// sharing a running script counts as running like the task that started it.

interface Flight<T> {
  promise: Promise<T>;
  readonly controller: AbortController;
  /** Callers still waiting for this run. */
  waiting: number;
  /** The run called its `started`. */
  started: boolean;
  /** The onStarted of the callers waiting for the start (one entry per caller). */
  readonly listeners: Set<() => void>;
}

/** What a shared run gets: the signal that aborts when every caller left, and how to report its start. */
export type SharedRun<T> = (signal: AbortSignal, started: () => void) => Promise<T>;

/** Why `signal` aborted: its reason (an AbortError DOMException unless abort() was given one). */
function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

export class SingleFlight<T> {
  readonly #flights = new Map<string, Flight<T>>();

  /** Runs in progress (tests, /debug). */
  get size(): number {
    return this.#flights.size;
  }

  /**
   * `run`'s result for `key`, shared with every other caller of `key` while it runs. `run`
   * gets a signal that aborts when all callers have aborted, and `started`, which it calls
   * once the work has really begun (not merely waits for a resource): `onStarted` is then
   * called, once, for each caller still waiting, and at once for a caller joining a run that
   * has already started. Whether this caller's `run` was the one started can be told from
   * inside `run` (only the first caller's is called).
   */
  join(key: string, signal: AbortSignal | undefined, run: SharedRun<T>, onStarted?: () => void): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    let flight = this.#flights.get(key);
    if (!flight) flight = this.#start(key, run);
    flight.waiting++;
    // A wrapper of our own: the same function joined twice is two callers.
    const listener = onStarted && (() => onStarted());
    if (listener) {
      if (flight.started) listener();
      else flight.listeners.add(listener);
    }
    if (!signal) return flight.promise;
    const joined = flight;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        if (listener) joined.listeners.delete(listener);
        reject(abortReason(signal));
        this.#leave(key, joined, signal);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      joined.promise.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  #start(key: string, run: SharedRun<T>): Flight<T> {
    const controller = new AbortController();
    // The flight exists before run is called (run may report its start at once); its promise
    // is set right after, before any caller can see it.
    const flight: Flight<T> = { promise: Promise.resolve(undefined as T), controller, waiting: 0, started: false, listeners: new Set() };
    const started = () => {
      if (flight.started) return;
      flight.started = true;
      const listeners = [...flight.listeners];
      flight.listeners.clear();
      for (const listener of listeners) listener();
    };
    // A run that throws before its first await rejects like one that fails later.
    const promise = (async () => run(controller.signal, started))();
    flight.promise = promise;
    this.#flights.set(key, flight);
    const forget = () => {
      if (this.#flights.get(key) === flight) this.#flights.delete(key);
    };
    // The callers see the outcome through their own handlers; this one only forgets the
    // flight (and keeps an abandoned run's rejection from being "unhandled").
    promise.then(forget, forget);
    return flight;
  }

  #leave(key: string, flight: Flight<T>, signal: AbortSignal): void {
    if (--flight.waiting > 0) return;
    if (this.#flights.get(key) === flight) this.#flights.delete(key);
    flight.controller.abort(abortReason(signal));
  }
}
