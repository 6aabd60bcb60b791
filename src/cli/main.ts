/**
 * argv → command. The single try/catch of the program: an EditError becomes one line on stderr
 * and its exit code; anything else is a bug and prints its stack.
 */
import { parseArgs } from 'node:util';
import { EditError } from '../errors.js';
import type { Command, Io } from './command.js';
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
  'force-unlock': async () => (await import('./commands/force-unlock.js')).forceUnlockCommand,
};

async function help(): Promise<string> {
  const commands = await Promise.all(Object.values(COMMANDS).map((load) => load()));
  const rows = commands.map((c) => `  ${c.usage.padEnd(60)} ${c.summary}`);
  return ['usage: edit <command> [options]   (also installed as `editops`)', '', 'commands:', ...rows, '', 'Every command takes --help. EDIT_BACKEND=node-gpu|node|wasm|cpu forces a TensorFlow.js backend.'].join('\n');
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
    io.out(await help());
    return name === undefined ? 1 : 0;
  }
  if (name === '--version' || name === 'version') {
    io.out('editops 0.1.0');
    return 0;
  }
  try {
    const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (load === undefined) throw new EditError(`unknown command "${name}"; run \`edit help\` for the list`);
    const command = await load();
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
