// The one bounded pool every script goes through (both steps, every session, echo too).
// Fair by default: a freed slot goes to the waiting group (session) with the fewest running
// jobs, ties to the one whose oldest queued job waited longest; `fifo` is one global queue.
// Within a group jobs start in the order they were queued.
import type { PoolOrder } from './config-types.js';

interface Job {
  readonly seq: number;
  readonly fn: () => Promise<unknown>;
  readonly done: (started: boolean) => void;
  state: 'queued' | 'started' | 'cancelled';
  unlisten?: () => void;
}

interface Group {
  readonly name: string;
  running: number;
  waiting: number;
  // Array with a moving head: O(1) dequeue, cancelled jobs are skipped lazily.
  readonly queue: Job[];
  head: number;
}

export class Pool {
  private readonly groups = new Map<string, Group>();
  private readonly waitingGroups = new Set<Group>();
  private seq = 0;
  private running = 0;
  private waiting = 0;

  constructor(
    readonly size: number,
    readonly order: PoolOrder,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`pool size must be >= 1, got ${size}`);
  }

  get busy(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting;
  }

  /**
   * Queues `fn` for `group`. Resolves true once fn has run (its own errors are its business),
   * false when `signal` aborted before it started (the job is dropped from the queue).
   */
  run(group: string, fn: () => Promise<unknown>, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const g = this.group(group);
      const job: Job = { seq: this.seq++, fn, done: resolve, state: 'queued' };
      g.queue.push(job);
      g.waiting++;
      this.waiting++;
      this.waitingGroups.add(g);
      if (signal) {
        const onAbort = () => {
          if (job.state !== 'queued') return;
          job.state = 'cancelled';
          g.waiting--;
          this.waiting--;
          if (g.waiting === 0) this.waitingGroups.delete(g);
          this.forget(g);
          resolve(false);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        job.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      this.dispatch();
    });
  }

  private group(name: string): Group {
    let g = this.groups.get(name);
    if (!g) {
      g = { name, running: 0, waiting: 0, queue: [], head: 0 };
      this.groups.set(name, g);
    }
    return g;
  }

  private forget(g: Group): void {
    if (g.running === 0 && g.waiting === 0) this.groups.delete(g.name);
  }

  private headOf(g: Group): Job | undefined {
    while (g.head < g.queue.length && g.queue[g.head]?.state === 'cancelled') g.head++;
    if (g.head > 1024 && g.head * 2 > g.queue.length) {
      g.queue.splice(0, g.head);
      g.head = 0;
    }
    return g.queue[g.head];
  }

  private pick(): Group | undefined {
    let best: Group | undefined;
    let bestSeq = Infinity;
    for (const g of this.waitingGroups) {
      const seq = this.headOf(g)?.seq ?? Infinity;
      if (best === undefined) {
        best = g;
        bestSeq = seq;
        continue;
      }
      const fewer = this.order === 'fair' && g.running < best.running;
      const tie = this.order === 'fifo' || g.running === best.running;
      if (fewer || (tie && seq < bestSeq)) {
        best = g;
        bestSeq = seq;
      }
    }
    return best;
  }

  private dispatch(): void {
    while (this.running < this.size && this.waiting > 0) {
      const g = this.pick();
      const job = g && this.headOf(g);
      if (!g || !job) return;
      g.head++;
      g.waiting--;
      this.waiting--;
      if (g.waiting === 0) this.waitingGroups.delete(g);
      g.running++;
      this.running++;
      job.state = 'started';
      job.unlisten?.();
      const finish = () => {
        g.running--;
        this.running--;
        this.forget(g);
        job.done(true);
        this.dispatch();
      };
      Promise.resolve()
        .then(job.fn)
        .then(finish, finish);
    }
  }
}
