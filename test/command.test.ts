// parseCommand (docs/scripts.md, How a script is run): split like a shell (quotes, backslashes),
// never run by one, so variables stay literal and shell operators are refused.
import t from 'tap';
import { CommandError, parseCommand } from '../src/command.js';

/** The error parseCommand throws for `line` (undefined when it does not throw). */
function errorOf(line: string): unknown {
  try {
    parseCommand(line);
  } catch (err) {
    return err;
  }
  return undefined;
}

t.test('the default command lines split into program and arguments', async (t) => {
  const line = '/usr/bin/php -d display_errors=stderr script/items.php';
  t.same(parseCommand(line), { file: '/usr/bin/php', args: ['-d', 'display_errors=stderr', 'script/items.php'], line });
  t.same(parseCommand('  php\tscript.php   x  ').args, ['script.php', 'x'], 'runs of blanks separate words');
});

t.test('quotes and backslashes group words like a shell', async (t) => {
  t.same(parseCommand(`"/opt/my scripts/run.php" 'a b' c\\ d`), {
    file: '/opt/my scripts/run.php',
    args: ['a b', 'c d'],
    line: `"/opt/my scripts/run.php" 'a b' c\\ d`,
  });
  t.same(parseCommand(`php -r "echo \\"x\\";"`).args, ['-r', 'echo "x";'], 'escaped quotes inside double quotes');
  t.same(parseCommand(`php 'it'\\''s'`).args, ["it's"], 'quote concatenation');
  t.same(parseCommand(`php 'back\\slash'`).args, ['back\\slash'], 'single quotes keep backslashes');
  t.same(parseCommand(`php ""`).args, [''], 'an empty quoted argument is kept');
});

t.test('$VAR stays literal (no shell, no expansion)', async (t) => {
  process.env.AGGREGATOR_CMD_TEST = 'EXPANDED';
  t.teardown(() => delete process.env.AGGREGATOR_CMD_TEST);
  const cmd = parseCommand(`php $AGGREGATOR_CMD_TEST "$AGGREGATOR_CMD_TEST" '$AGGREGATOR_CMD_TEST' $HOME`);
  t.same(cmd.args, ['$AGGREGATOR_CMD_TEST', '$AGGREGATOR_CMD_TEST', '$AGGREGATOR_CMD_TEST', '$HOME']);
  t.notMatch(parseCommand('php ${AGGREGATOR_CMD_TEST}').args[0], /EXPANDED/, 'braced form is not expanded either');
  t.same(parseCommand('php `id` *.php').args, ['`id`', '*.php'], 'backticks and globs stay text');
});

t.test('shell operators are refused', async (t) => {
  for (const line of [
    'php a.php | tee log',
    'php a.php > out',
    'php a.php < in',
    'php a.php 2>&1',
    'php a.php && rm x',
    'php a.php || true',
    'php a.php; rm x',
    'php a.php &',
    '(php a.php)',
    'php $(id)',
  ]) {
    const err = errorOf(line);
    t.type(err, CommandError, line);
    t.match(String(err), /shell operator/);
  }
});

t.test('an empty command is refused', async (t) => {
  for (const line of ['', '   ', '""', "''", '# only a comment']) {
    const err = errorOf(line);
    t.type(err, CommandError, JSON.stringify(line));
    t.match(String(err), /empty script command/);
  }
});

t.test('a trailing comment ends the command', async (t) => {
  t.same(parseCommand('php a.php # the items script').args, ['a.php']);
});
