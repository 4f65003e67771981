// Numbers in, one table out: percentiles, formatting, and the table `npm run bench` prints.
import type { Row } from './types.js';

/** Nearest-rank percentile (p in 0..100) of unsorted values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? NaN;
}

export const median = (values: readonly number[]) => percentile(values, 50);

/** "rounds 0.81-1.12": the lowest and highest per-round ratio, to show how noisy the machine was. */
export function spread(ratios: readonly number[]): string {
  return `rounds ${fmt(Math.min(...ratios))}-${fmt(Math.max(...ratios))}`;
}

/** Notes joined for the verdict column; undefined when there are none. */
export function notes(...parts: (string | false | undefined)[]): string | undefined {
  const kept = parts.filter((x): x is string => typeof x === 'string' && x !== '');
  return kept.length > 0 ? kept.join('; ') : undefined;
}

export function fmt(n: number | null | undefined, unit = ''): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  const abs = Math.abs(n);
  const text = abs >= 100 ? n.toFixed(0) : abs >= 10 ? n.toFixed(1) : n.toFixed(2);
  return unit ? `${text} ${unit}` : text;
}

export interface TableRow extends Row {
  readonly scenario: string;
}

function verdict(r: Row): string {
  if (r.pass === undefined) return 'info';
  return r.pass ? 'ok' : 'MISS';
}

/** One plain-text table (also valid Markdown), one line per figure. */
export function renderTable(rows: readonly TableRow[]): string {
  const head = ['#', 'figure', 'value', 'target', 'baseline (same run)', 'ratio', 'verdict'];
  const body = rows.map((r) => [
    r.scenario,
    r.figure,
    r.shown ?? fmt(r.value, r.unit),
    r.target,
    r.baseline === undefined ? '-' : `${fmt(r.baseline, r.unit)}${r.baselineLabel ? ` (${r.baselineLabel})` : ''}`,
    r.ratio === undefined ? '-' : fmt(r.ratio),
    verdict(r) + (r.note ? ` (${r.note})` : ''),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}
