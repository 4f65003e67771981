// What a scenario returns: rows for the one table `npm run bench` prints, plus facts the
// smoke test checks for sanity (counts of dropped sessions, items received, ...).

export type Mode = 'smoke' | 'full';

export interface Row {
  /** Stable key for the smoke test, e.g. "scripts_per_s". */
  readonly key: string;
  readonly figure: string;
  readonly unit: string;
  /** null = not measured (e.g. skipped, or a deadline passed: see `shown`). */
  readonly value: number | null;
  /** Text for the value column when the number alone would mislead (e.g. "> 200 s"). */
  readonly shown?: string;
  readonly target: string;
  readonly baseline?: number | null;
  readonly baselineLabel?: string;
  readonly ratio?: number;
  /** undefined = informational, no target. */
  readonly pass?: boolean;
  readonly note?: string;
}

export interface Result {
  readonly rows: Row[];
  readonly facts: Record<string, number>;
  /** Set when the scenario could not run here (e.g. websocketd missing). */
  readonly skipped?: string;
}

export interface Scenario {
  readonly id: string;
  readonly title: string;
  run(mode: Mode): Promise<Result>;
}
