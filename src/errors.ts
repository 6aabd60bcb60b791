/**
 * The only thrown types. An EditError is a user's mistake or an expected failure:
 * cli/main.ts prints it as one line (`file: /pointer: message`) and exits with its code,
 * never with a stack trace. An InternalError is a bug in editops.
 */
export class EditError extends Error {
  constructor(
    message: string,
    readonly options: { file?: string; pointer?: string; exitCode?: number; hint?: string } = {},
  ) {
    super(message);
    this.name = 'EditError';
  }

  get exitCode(): number {
    return this.options.exitCode ?? 1;
  }

  /** `file: /pointer: message` — the one line a user sees. */
  format(): string {
    const where = [this.options.file, this.options.pointer].filter((s) => s !== undefined && s !== '');
    const head = where.length > 0 ? `${where.join(': ')}: ` : '';
    const hint = this.options.hint ? `\n  hint: ${this.options.hint}` : '';
    return `${head}${this.message}${hint}`;
  }
}

export class InternalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InternalError';
  }
}
