/**
 * `edit validate`: schema and conflict checks on every edit file; no model needed.
 * Exit 0 when clean, 1 when any problem is found.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { EditError } from '../../errors.js';
import { findConflicts } from '../../spec/conflicts.js';
import { loadEdits } from '../../spec/load.js';
import type { SpecProblem } from '../../spec/types.js';
import type { Command } from '../command.js';
import { EDITS_DIR_OPTION, projectRoot, stringFlag } from '../flags.js';

/** The `--json` document (formatVersion changes only when a field changes meaning or goes away). */
export interface ValidateReport {
  formatVersion: '1';
  valid: boolean;
  edits: Array<{ id: string; file: string; sha256: string }>;
  problems: SpecProblem[];
}

export const validateCommand: Command = {
  name: 'validate',
  args: '',
  summary: 'check every edit file against the schema and for conflicts (no model needed)',
  options: {
    ...EDITS_DIR_OPTION,
    json: { type: 'boolean', description: 'print the report as JSON (formatVersion 1)' },
  },
  examples: ['edit validate', 'edit validate --dir edits/capitals --json'],
  async run(ctx) {
    if (ctx.args.length > 0) throw new EditError(`validate takes no arguments (got ${JSON.stringify(ctx.args[0])}); use --dir to check another folder`);
    const dir = stringFlag(ctx, 'dir', 'edits');
    const root = projectRoot(ctx);
    // "0 edit files valid" for a folder that is not there would hide a wrong folder or a broken checkout.
    if (!existsSync(resolve(root, dir))) throw new EditError(`there is no edits folder here (project root ${root})`, { file: resolve(root, dir), hint: 'run from your project, pass --dir, or create the folder (`editops init` does)' });
    const { edits, problems: loadProblems } = await loadEdits(root, dir);
    const problems = [...loadProblems, ...findConflicts(edits)].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
    const report: ValidateReport = {
      formatVersion: '1',
      valid: problems.length === 0,
      edits: edits.map((e) => ({ id: e.id, file: e.file, sha256: e.sha256 })),
      problems,
    };
    if (ctx.flags.json === true) {
      ctx.io.out(JSON.stringify(report, null, 2));
    } else if (report.valid) {
      ctx.io.out(`${count(edits.length, 'edit file')} valid`);
    } else {
      ctx.io.err(problems.map(formatProblem).join('\n'));
      const files = new Set(problems.map((p) => p.file)).size;
      ctx.io.err(`${count(problems.length, 'problem')} in ${count(files, 'file')}`);
    }
    return report.valid ? 0 : 1;
  },
};

/** `file: /pointer: message` (the pointer left out when the problem is the whole file). */
export function formatProblem(p: SpecProblem): string {
  return p.pointer === '' ? `${p.file}: ${p.message}` : `${p.file}: ${p.pointer}: ${p.message}`;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
