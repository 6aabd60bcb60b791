/**
 * argv → command. The single try/catch of the program: an EditError becomes one line on stderr
 * and its exit code; anything else is a bug and prints its stack.
 */
import { parseArgs } from 'node:util';
import { EditError } from '../errors.js';
import type { Command, Io } from './command.js';
import { generateCommand } from './commands/generate.js';
import { modelCommand } from './commands/model.js';

const COMMANDS: Command[] = [generateCommand, modelCommand];

function help(): string {
  const rows = COMMANDS.map((c) => `  ${c.usage.padEnd(44)} ${c.summary}`);
  return ['usage: edit <command> [options]   (also installed as `editops`)', '', 'commands:', ...rows, '', 'EDIT_BACKEND=node-gpu|node|wasm|cpu forces a TensorFlow.js backend.'].join('\n');
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
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(help());
    return name === undefined ? 1 : 0;
  }
  if (name === '--version' || name === 'version') {
    io.out('editops 0.1.0');
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  try {
    if (command === undefined) throw new EditError(`unknown command "${name}"; run \`edit help\` for the list`);
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    } catch (err) {
      throw new EditError(`${(err as Error).message.split('\n')[0]}\nusage: edit ${command.usage}`);
    }
    if (parsed.values.help === true) {
      io.out(`usage: edit ${command.usage}\n\n${command.summary}`);
      return 0;
    }
    return await command.run({ args: parsed.positionals, flags: parsed.values, io, cwd: process.cwd() });
  } catch (err) {
    if (err instanceof EditError) {
      io.err(`error: ${err.format()}`);
      return err.exitCode;
    }
    io.err(`internal error (a bug in editops): ${(err as Error).stack ?? String(err)}`);
    return 70;
  }
}
