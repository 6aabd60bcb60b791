import type { ParseArgsConfig } from 'node:util';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** stdout is a terminal (ink UI, colours) rather than a pipe or CI log. */
  tty: boolean;
}

export interface CommandContext {
  args: string[];
  flags: Record<string, string | boolean | string[] | boolean[] | undefined>;
  io: Io;
  cwd: string;
}

export interface Command {
  name: string;
  usage: string;
  summary: string;
  options: OptionSpec;
  run(ctx: CommandContext): Promise<number>;
}
