// The error catalogue (src/errors.ts) against SPEC sections 3 and 4 and against docs/errors.md,
// both ways: no code missing, none invented, same close codes.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ERRORS, ERROR_CODES, type ErrorCode, type ErrorInfo, closeCodeFor, isErrorCode } from '../src/errors.js';
import { ROOT } from './helpers/harness.js';

const SPEC = path.join(ROOT, '..', 'shared', 'SPEC.md');
const DOC = path.join(ROOT, 'docs', 'errors.md');
// The SPEC lives next to the repo (../shared in CI); without it those checks are skipped.
const noSpec = fs.existsSync(SPEC) ? false : `no SPEC at ${SPEC}`;

// The close codes SPEC section 3 gives for errors that end a session outright.
const SPEC_CLOSE: Partial<Record<ErrorCode, number>> = {
  E_REQUEST_JSON: 4400,
  E_ILLEGAL_REQUEST: 4400,
  E_SESSION_TIMEOUT: 4408,
  E_TOO_MANY_SESSIONS: 1013,
  E_SERVER_SHUTDOWN: 1001,
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

/** The text of a `## N.` section of the SPEC, up to the next `## `. */
function section(spec: string, n: number): string {
  const start = spec.search(new RegExp(`^## ${n}\\.`, 'm'));
  if (start < 0) throw new Error(`SPEC has no section ${n}`);
  const rest = spec.slice(start + 3);
  const end = rest.search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end);
}

t.test('the catalogue: the close codes SPEC 3 gives, 1000 for step errors', async (t) => {
  for (const [code, close] of Object.entries(SPEC_CLOSE)) {
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
  const rows = codeRows(fs.readFileSync(DOC, 'utf8'));
  const documented = new Map(rows.map((r) => [unquote(r[0]!), r]));
  t.equal(documented.size, rows.length, 'no code documented twice');
  for (const code of ERROR_CODES) {
    const row = documented.get(code);
    if (!row) {
      t.fail(`${code} is not documented in docs/errors.md`);
      continue;
    }
    const info: ErrorInfo = ERRORS[code];
    t.equal(row.length, 4, `${code}: code | when | close code | sent`);
    t.equal(unquote(row[1]!), info.meaning, `${code}: same meaning`);
    t.equal(row[2], info.close === undefined ? '—' : String(info.close), `${code}: same close code`);
    t.equal(/^yes\b/.test(row[3]!), info.sent, `${code}: same "sent"`);
    t.match(row[3], /^(yes|no)\b/);
  }
  for (const code of documented.keys()) t.ok(isErrorCode(code), `documented ${code} exists in the catalogue`);
});

t.test('SPEC section 4 lists exactly the catalogue', { skip: noSpec }, async (t) => {
  const spec = fs.readFileSync(SPEC, 'utf8');
  const rows = codeRows(section(spec, 4));
  t.ok(rows.length >= 10, 'the table was found');
  const specCodes = rows.map((r) => unquote(r[0]!));
  t.same([...specCodes].sort(), [...ERROR_CODES].sort(), 'same set of codes');
  for (const row of rows) {
    const code = unquote(row[0]!);
    if (isErrorCode(code)) t.equal(ERRORS[code].meaning, unquote(row[1]!), `${code}: same meaning as the SPEC`);
  }
});

t.test('SPEC section 3 gives the close codes the catalogue has', { skip: noSpec }, async (t) => {
  const s3 = section(fs.readFileSync(SPEC, 'utf8'), 3);
  const subsections = s3.split(/^### /m);
  for (const [code, close] of Object.entries(SPEC_CLOSE)) {
    const says = subsections.some((sub) => sub.includes(code) && new RegExp(`\\bclosed?(\\s+with)?(\\s+code)?\\s+${close}\\b`).test(sub));
    t.ok(says, `SPEC 3 closes ${code} with ${close}`);
  }
  t.match(s3, /close\s+code\s+is\s+1000/, 'a finished search (also a failed suppliers step) closes with 1000');
  for (const code of new Set(s3.match(/\bE_[A-Z_]+\b/g) ?? [])) t.ok(isErrorCode(code), `${code} named in SPEC 3 is in the catalogue`);
});
