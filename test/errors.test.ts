// The error catalogue (src/errors.ts) against the project's own contract, docs/errors.md (and
// the close codes docs/protocol.md gives), both ways: no code missing, none invented, the same
// meaning, close code and "sent" for each. Nothing outside the repository is read.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ERRORS, ERROR_CODES, type ErrorCode, type ErrorInfo, closeCodeFor, isErrorCode } from '../src/errors.js';
import { ROOT } from './helpers/harness.js';

const DOC = path.join(ROOT, 'docs', 'errors.md');

// The close codes docs/protocol.md ("Close codes") gives for errors that end a search outright.
const SESSION_CLOSE: Partial<Record<ErrorCode, number>> = {
  E_REQUEST_JSON: 4400,
  E_ILLEGAL_REQUEST: 4400,
  E_SESSION_TIMEOUT: 4408,
  E_TOO_MANY_SESSIONS: 1013,
  E_SERVER_SHUTDOWN: 1001,
  E_UNKNOWN: 1011,
};

const unquote = (s: string) => s.replace(/`/g, '').trim();

/** Rows of the markdown tables in `text` whose first cell is a backquoted error code. */
function codeRows(text: string): string[][] {
  return text
    .split('\n')
    .filter((line) => /^\|\s*`E_[A-Z_]+`\s*\|/.test(line))
    .map((line) =>
      line
        .replace(/^\||\|\s*$/g, '')
        .split('|')
        .map((cell) => cell.trim()),
    );
}

/** What docs/errors.md says that differs from the catalogue (empty = they agree). */
function disagreements(doc: string): string[] {
  const bad: string[] = [];
  const rows = codeRows(doc);
  const documented = new Map<string, string[]>();
  for (const row of rows) {
    const code = unquote(row[0] ?? '');
    if (documented.has(code)) bad.push(`${code} is documented twice`);
    documented.set(code, row);
  }
  for (const code of ERROR_CODES) {
    const row = documented.get(code);
    if (!row) {
      bad.push(`${code} is not in the table`);
      continue;
    }
    const info: ErrorInfo = ERRORS[code];
    if (row.length !== 4) {
      bad.push(`${code}: ${row.length} cells, not code | when | close code | sent`);
      continue;
    }
    const [, when = '', close = '', sent = ''] = row;
    if (unquote(when) !== info.meaning) bad.push(`${code}: meaning "${unquote(when)}", the catalogue says "${info.meaning}"`);
    const closeWanted = info.close === undefined ? '—' : String(info.close);
    if (close !== closeWanted) bad.push(`${code}: close code ${close}, the catalogue says ${closeWanted}`);
    if (!/^(yes|no)\b/.test(sent)) bad.push(`${code}: "sent" is neither yes nor no: ${sent}`);
    else if (/^yes\b/.test(sent) !== info.sent) bad.push(`${code}: sent "${sent}", the catalogue says ${String(info.sent)}`);
    // Each code has its own section explaining it.
    if (!new RegExp(`^### \`${code}\`\\s*$`, 'm').test(doc)) bad.push(`${code} has no "### \`${code}\`" section`);
  }
  for (const code of documented.keys()) if (!isErrorCode(code)) bad.push(`${code} is documented but not in the catalogue`);
  for (const m of doc.matchAll(/^### `(E_[A-Z_]+)`/gm)) if (!isErrorCode(m[1])) bad.push(`section ${m[1]} is not in the catalogue`);
  return bad;
}

t.test('the catalogue: the close codes docs/protocol.md gives, 1000 for step errors', async (t) => {
  for (const [code, close] of Object.entries(SESSION_CLOSE)) {
    t.equal(closeCodeFor(code as ErrorCode), close, code);
  }
  // Task-step errors that end the search (the suppliers step failed) close normally.
  for (const code of ['E_SUPPLIERS_JSON', 'E_SUPPLIERS_RESPONSE', 'E_SCRIPT_START', 'E_SCRIPT_ERROR', 'E_SCRIPT_TIMEOUT', 'E_SCRIPT_CANCELLED'] as const) {
    t.equal(closeCodeFor(code), 1000, code);
  }
  t.equal((ERRORS.E_SESSION_REUSED as ErrorInfo).close, undefined, 'a reused socket is not closed');
  t.equal(ERRORS.E_SESSION_CLOSED.sent, false, 'E_SESSION_CLOSED is never sent');
  t.equal(ERRORS.E_TOO_MANY_SESSIONS.sent, false, 'too many sessions: close reason, no frame');
  t.ok(isErrorCode('E_UNKNOWN'));
  t.notOk(isErrorCode('toString'), 'inherited names are not codes');
  t.notOk(isErrorCode('E_NOPE'));
  t.same(ERROR_CODES, Object.keys(ERRORS));
});

t.test('docs/errors.md documents exactly the catalogue', async (t) => {
  const doc = fs.readFileSync(DOC, 'utf8');
  t.equal(codeRows(doc).length, ERROR_CODES.length, 'one table row per code');
  t.same(disagreements(doc), [], 'every code, meaning, close code and "sent" agree');
});

t.test('the comparison catches a docs table that disagrees with the catalogue', async (t) => {
  const doc = fs.readFileSync(DOC, 'utf8');
  const row = (code: string) => doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`)) ?? '';
  const cases: [string, string][] = [
    ['a code left out', doc.replace(`${row('E_ITEMS_JSON')}\n`, '')],
    ['a code invented', doc.replace(row('E_UNKNOWN'), `${row('E_UNKNOWN')}\n| \`E_NOPE\` | nothing | — | yes |`)],
    ['another meaning', doc.replace(row('E_SCRIPT_TIMEOUT'), row('E_SCRIPT_TIMEOUT').replace('ran past', 'ran longer than'))],
    ['another close code', doc.replace(row('E_SESSION_TIMEOUT'), row('E_SESSION_TIMEOUT').replace('| 4408 |', '| 1000 |'))],
    ['a task-only code given a close code', doc.replace(row('E_ITEMS_RESPONSE'), row('E_ITEMS_RESPONSE').replace('| — |', '| 1000 |'))],
    ['a never-sent code marked sent', doc.replace(row('E_SESSION_CLOSED'), row('E_SESSION_CLOSED').replace('| no |', '| yes |'))],
    ['a sent code marked never sent', doc.replace(row('E_REQUEST_JSON'), row('E_REQUEST_JSON').replace('| yes |', '| no |'))],
    ['a section missing', doc.replace('### `E_SCRIPT_START`', '### Cannot start')],
  ];
  for (const [what, broken] of cases) {
    t.not(broken, doc, `${what}: the docs were changed`);
    t.not(disagreements(broken).length, 0, `${what}: found`);
  }
});
