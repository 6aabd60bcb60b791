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

/** One flag of a command: how the parser reads it, and the words `--help` and the README show for it. */
export interface Flag {
  type: 'string' | 'boolean';
  short?: string;
  /** Repeatable (`--target a --target b`); the value is then an array. */
  multiple?: boolean;
  /** A string flag's value as help shows it: `--out <file>`. */
  value?: string;
  /** One line for `--help` and the README. */
  description: string;
}

/** A command's flags by long name (without `--`): the one table parsing, `--help` and the README read. */
export type Flags = Record<string, Flag>;

export interface Command {
  name: string;
  /** Positional arguments after the name, as help shows them (`[plan.json]`, `"<prompt>"`); '' for none. */
  args: string;
  summary: string;
  options: Flags;
  /** Whole command lines (`edit plan --out plan.json`) that `--help` shows; at least one. */
  examples: string[];
  run(ctx: CommandContext): Promise<number>;
}
