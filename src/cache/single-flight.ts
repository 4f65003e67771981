// Identical runs at the same time share one run (issue 13: two searches for the same part
// at the same supplier, in one session or in two, start one items script, not two). The
// first caller of a key starts `run`; callers of the same key while it runs wait for the
// same result. Each caller's AbortSignal detaches only that caller (its promise rejects at
// once with the signal's reason); the shared run is aborted only when every caller has
// detached, and is then forgotten, so a later caller starts afresh rather than joining a
// run that is being torn down. The entry goes when the run settles, success or failure:
// nothing is remembered (that is the cache's job).

interface Flight<T> {
  readonly promise: Promise<T>;
  readonly controller: AbortController;
  /** Callers still waiting for this run. */
  waiting: number;
}

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
   * gets a signal that aborts when all callers have aborted. Whether this caller's `run` was
   * the one started can be told from inside `run` (only the first caller's is called).
   */
  join(key: string, signal: AbortSignal | undefined, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    let flight = this.#flights.get(key);
    if (!flight) flight = this.#start(key, run);
    flight.waiting++;
    if (!signal) return flight.promise;
    const joined = flight;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
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

  #start(key: string, run: (signal: AbortSignal) => Promise<T>): Flight<T> {
    const controller = new AbortController();
    // A run that throws before its first await rejects like one that fails later.
    const promise = (async () => run(controller.signal))();
    const flight: Flight<T> = { promise, controller, waiting: 0 };
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
