// `npm run bench` (full) or `npm run bench -- --smoke [1 3 ...]`: runs the scenarios in order,
// each with its baseline side by side, and prints one table. Exit code 1 when a scenario
// crashed; a missed target is a MISS in the table, not an error.
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { SCENARIOS } from './scenarios.js';
import { type TableRow, renderTable } from './lib/table.js';
import type { Mode } from './lib/types.js';

function machine(): string {
  let php = '?';
  try {
    php = execFileSync('/usr/bin/php', ['-r', 'echo PHP_VERSION;'], { encoding: 'utf8' });
  } catch {
    // reported as '?'
  }
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  return `nproc ${os.availableParallelism()}, node ${process.version}, php ${php}, load ${load}`;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const mode: Mode = args.includes('--smoke') ? 'smoke' : 'full';
  const only = args.filter((a) => /^\d+$/.test(a));
  const chosen = SCENARIOS.filter((s) => only.length === 0 || only.includes(s.id));
  process.stderr.write(`bench (${mode}): ${machine()}\n`);
  const rows: TableRow[] = [];
  let crashed = 0;
  for (const s of chosen) {
    const started = performance.now();
    process.stderr.write(`  ${s.id}. ${s.title} ...`);
    try {
      const res = await s.run(mode);
      if (res.skipped) rows.push({ scenario: s.id, key: 'skipped', figure: s.title, unit: '', value: null, shown: `skipped: ${res.skipped}`, target: '-' });
      for (const r of res.rows) rows.push({ scenario: s.id, ...r });
      process.stderr.write(` ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    } catch (err) {
      crashed++;
      process.stderr.write(` FAILED\n${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      rows.push({ scenario: s.id, key: 'error', figure: s.title, unit: '', value: null, shown: 'crashed (see above)', target: '-', pass: false });
    }
  }
  process.stdout.write(`\n${renderTable(rows)}\n\nmachine: ${machine()}\n`);
  process.exitCode = crashed ? 1 : 0;
}

await main();
