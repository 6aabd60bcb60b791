/**
 * argv → command. The single try/catch of the program: an EditError becomes one line on stderr
 * and its exit code; anything else is a bug and prints its stack.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EditError } from '../errors.js';
import { closest } from '../util/closest.js';
import { packageRoot } from '../util/package-root.js';
import type { Command, CommandContext, Io } from './command.js';
import { HELP_FLAG, commandHelp, commandTable, overviewHelp } from './help.js';
import { handleInterrupts } from './interrupt.js';
/** Commands load on demand: most do not need TensorFlow.js, which takes a second to import. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  init: async () => (await import('./commands/init.js')).initCommand,
  validate: async () => (await import('./commands/validate.js')).validateCommand,
  plan: async () => (await import('./commands/plan.js')).planCommand,
  apply: async () => (await import('./commands/apply.js')).applyCommand,
  verify: async () => (await import('./commands/verify.js')).verifyCommand,
  show: async () => (await import('./commands/show.js')).showCommand,
  diff: async () => (await import('./commands/diff.js')).diffCommand,
  generate: async () => (await import('./commands/generate.js')).generateCommand,
  model: async () => (await import('./commands/model.js')).modelCommand,
  eval: async () => (await import('./commands/eval.js')).evalCommand,
  'train-editor': async () => (await import('./commands/train-editor.js')).trainEditorCommand,
  analyze: async () => (await import('./commands/analyze.js')).analyzeCommand,
  'force-unlock': async () => (await import('./commands/force-unlock.js')).forceUnlockCommand,
};

/** Every command, in the order of the table above (help and the README list them so). */
export async function loadCommands(): Promise<Command[]> {
  return Promise.all(Object.values(COMMANDS).map((load) => load()));
}

async function loadCommand(name: string): Promise<Command> {
  if (Object.hasOwn(COMMANDS, name)) return COMMANDS[name]();
  const near = closest(name, [...Object.keys(COMMANDS), 'help', 'version']);
  throw new EditError(`unknown command "${name}"${near ? `; did you mean "${near}"?` : ''}`, { hint: 'run `edit help` for the list' });
}

/** The command's flags as parseArgs reads them; a typo gets the nearest flag instead of the parser's words. */
export function parseFlags(command: Command, args: string[]): Pick<CommandContext, 'args' | 'flags'> {
  const table = { ...command.options, help: HELP_FLAG };
  const options = Object.fromEntries(Object.entries(table).map(([name, f]) => [name, { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) }]));
  try {
    const parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { args: parsed.positionals, flags: parsed.values as CommandContext['flags'] };
  } catch (err) {
    if (!String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')) throw err;
    throw flagError(command, args, err as Error & { code?: string });
  }
}

function flagError(command: Command, args: string[], err: Error & { code?: string }): EditError {
  const hint = `\`edit ${command.name} --help\` lists its flags`;
  const given = /^Option '(?:-\w, )?(--?[^' ]+)/.exec(err.message)?.[1] ?? /^Unknown option '([^']+)'/.exec(err.message)?.[1];
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && given !== undefined) {
    // The argument as typed: `-target` reaches the parser as the short flag -t.
    const typed = given.startsWith('--') ? given : (args.find((a) => a.startsWith('-') && !a.startsWith('--') && a.includes(given.slice(1))) ?? given);
    const bare = typed.replace(/^--?/, '').split('=')[0];
    const near = closest(bare, Object.keys(command.options)) ?? (Object.hasOwn(command.options, bare) ? bare : undefined);
    return new EditError(`unknown flag ${typed.split('=')[0]} for \`edit ${command.name}\`${near ? `; did you mean --${near}?` : ''}`, { hint });
  }
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && given !== undefined) {
    const name = given.replace(/^--?/, '');
    const flag = command.options[name];
    if (/does not take an argument/.test(err.message)) return new EditError(`${given} takes no value`, { hint });
    const dash = /ambiguous/.test(err.message) ? ` (a value that starts with "-" goes as ${given}=-…)` : '';
    return new EditError(`${given} needs a value: ${given} ${flag?.value ?? '<value>'}${dash}`, { hint });
  }
  return new EditError(err.message.split('\n')[0], { hint });
}

function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

export function defaultIo(): Io {
  return {
    out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
    tty: process.stdout.isTTY === true,
  };
}

export async function main(argv: string[], io: Io = defaultIo()): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
      // `edit help <command>`, `edit help --markdown` (the README's command table), or the overview.
      const topic = name === 'help' && rest[0] !== '--help' && rest[0] !== '-h' ? rest[0] : undefined;
      if (topic === '--markdown') io.out(commandTable(await loadCommands()));
      else if (topic !== undefined) io.out(commandHelp(await loadCommand(topic)));
      else io.out(overviewHelp(await loadCommands()));
      return name === undefined ? 1 : 0;
    }
    if (name === '--version' || name === '-v' || name === 'version') {
      io.out(`editops ${version()}`);
      return 0;
    }
    const command = await loadCommand(name);
    const { args, flags } = parseFlags(command, rest);
    if (flags.help === true) {
      io.out(commandHelp(command));
      return 0;
    }
    const stopHandling = handleInterrupts(io);
    try {
      return await command.run({ args, flags, io, cwd: process.cwd() });
    } finally {
      stopHandling();
    }
  } catch (err) {
    const { closeOpenUis } = await import('./ui.js');
    await closeOpenUis();
    if (err instanceof EditError) {
      io.err(`error: ${err.format()}`);
      return err.exitCode;
    }
    io.err(`internal error (a bug in editops): ${(err as Error).stack ?? String(err)}`);
    return 70;
  }
}
