// Splits a script command line like a shell would (quotes, backslashes) without ever running
// a shell: variables stay literal and shell operators are refused, so config can't smuggle in
// pipes or redirections.
import { parse } from 'shell-quote';

export interface Command {
  readonly file: string;
  readonly args: readonly string[];
  /** The command line as configured, for logs and errors. */
  readonly line: string;
}

export class CommandError extends Error {}

export function parseCommand(line: string): Command {
  const words: string[] = [];
  // Returning '$NAME' keeps variables literal: no expansion happens anywhere.
  for (const entry of parse(line, (name) => `$${name}`)) {
    if (typeof entry === 'string') words.push(entry);
    else if ('pattern' in entry) words.push(entry.pattern);
    else if ('comment' in entry) break;
    else throw new CommandError(`shell operator "${entry.op}" is not allowed in a script command: ${line}`);
  }
  const [file, ...args] = words;
  if (file === undefined || file === '') throw new CommandError(`empty script command: "${line}"`);
  return { file, args, line };
}
