/**
 * The words about commands, all read from each command's flag table: `edit <command> --help`,
 * `edit help`, and the README's command table (`edit help --markdown`).
 */
import type { Command, Flag } from './command.js';

/** The flag every command takes; main handles it before the command runs. */
export const HELP_FLAG: Flag = { type: 'boolean', short: 'h', description: 'show this help' };

/** `-m, --model <dir>` / `    --json`: the left column of a flag's help line. */
function flagSyntax(name: string, f: Flag): string {
  const value = f.type === 'string' ? ` ${f.value ?? '<value>'}` : '';
  return `${f.short ? `-${f.short}, ` : '    '}--${name}${value}`;
}

export function synopsis(c: Command): string {
  return ['edit', c.name, c.args, Object.keys(c.options).length > 0 ? '[options]' : ''].filter(Boolean).join(' ');
}

/** `edit <command> --help` and `edit help <command>`. */
export function commandHelp(c: Command): string {
  const flags: Array<[string, Flag]> = [...Object.entries(c.options), ['help', HELP_FLAG]];
  const left = flags.map(([name, f]) => flagSyntax(name, f) + (f.multiple ? ' …' : ''));
  const width = Math.max(...left.map((l) => l.length)) + 2;
  return [
    `usage: ${synopsis(c)}`,
    '',
    c.summary,
    '',
    'options:',
    ...flags.map(([, f], i) => `  ${left[i].padEnd(width)}${f.description}${f.multiple ? ' (repeatable)' : ''}`),
    '',
    c.examples.length === 1 ? 'example:' : 'examples:',
    ...c.examples.map((e) => `  ${e}`),
  ].join('\n');
}

/** `edit help`: every command in one line each. */
export function overviewHelp(commands: Command[]): string {
  const left = commands.map((c) => [c.name, c.args].filter(Boolean).join(' '));
  const width = Math.max(...left.map((l) => l.length)) + 2;
  return [
    'usage: edit <command> [options]   (also installed as `editops`; in a project: npx edit …)',
    '',
    'commands:',
    ...commands.map((c, i) => `  ${left[i].padEnd(width)}${c.summary}`),
    '',
    '`edit help <command>` or `edit <command> --help` lists its flags with an example.',
    'EDIT_BACKEND=node-gpu|node|wasm|cpu forces a TensorFlow.js backend.',
  ].join('\n');
}

/** The README's command table (`edit help --markdown`): a command, what it does, its flags. */
export function commandTable(commands: Command[]): string {
  const cell = (s: string) => s.replaceAll('|', '\\|');
  const rows = commands.map((c) => {
    const flags = Object.entries(c.options).map(([name, f]) => `\`--${name}${f.type === 'string' ? ` ${f.value ?? '<value>'}` : ''}\``);
    return `| \`${cell(['edit', c.name, c.args].filter(Boolean).join(' '))}\` | ${cell(c.summary)} | ${cell(flags.join(' '))} |`;
  });
  return ['| command | what it does | flags (`edit help <command>` describes each) |', '|---|---|---|', ...rows].join('\n');
}
