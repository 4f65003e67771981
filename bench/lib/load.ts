// Bounded load loops: `total` jobs through `concurrency` workers; they stop by themselves.

export async function runWorkers<T>(concurrency: number, total: number, job: (i: number) => Promise<T>): Promise<{ results: T[]; ms: number }> {
  const results: T[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < total) {
      const i = next++;
      results[i] = await job(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return { results, ms: performance.now() - started };
}

/**
 * Runs `a` and `b` in `rounds` rounds, alternating which goes first (a b, b a, ...), so a
 * machine that gets busier or quieter during the run affects both sides alike.
 */
export async function sideBySide<A, B>(rounds: number, a: () => Promise<A>, b: () => Promise<B>): Promise<{ a: A[]; b: B[] }> {
  const as: A[] = [];
  const bs: B[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      as.push(await a());
      bs.push(await b());
    } else {
      bs.push(await b());
      as.push(await a());
    }
  }
  return { a: as, b: bs };
}
