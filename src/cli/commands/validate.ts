/**
 * `edit validate`: schema and conflict checks on every edit file; no model needed. When the model
 * folder is there (--model, else models/default), every prompt and what follows it is also counted
 * in the model's tokens against its context. Warnings (a target glued to its prompt) are printed
 * but do not fail. Exit 0 when there is no problem, 1 otherwise.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EditError } from '../../errors.js';
import { findConflicts } from '../../spec/conflicts.js';
import { contextProblems, modelContext } from '../../spec/lengths.js';
import { taskProblems } from '../../apply/workspace.js';
import { loadEdits, withLines } from '../../spec/load.js';
import { spacingWarnings } from '../../spec/spacing.js';
import { formatProblem, type LoadedEdit, type SpecProblem, type SpecWarning } from '../../spec/types.js';
import { loadTokenizer, MANIFEST, readManifest } from '../../model/folder.js';
import { excerpt } from '../../util/format.js';
import type { Command } from '../command.js';
import { annotation, inGithubActions, workspacePath } from '../github.js';
import { EDITS_DIR_OPTION, MODEL_OPTION, modelDir, projectRoot, stringFlag } from '../flags.js';

/** The `--json` document (formatVersion changes only when a field changes meaning or goes away). */
export interface ValidateReport {
  formatVersion: '1';
  valid: boolean;
  edits: Array<{ id: string; file: string; sha256: string }>;
  problems: SpecProblem[];
  /** Allowed but probably not meant; they do not make the files invalid. */
  warnings: SpecWarning[];
  /** The model whose context token lengths were checked against; null when there was no model folder. */
  context: { model: string; tokens: number } | null;
}

export const validateCommand: Command = {
  name: 'validate',
  args: '',
  summary: 'check every edit file against the schema and for conflicts; token lengths too when the model folder is there',
  options: {
    ...EDITS_DIR_OPTION,
    ...MODEL_OPTION,
    json: { type: 'boolean', description: 'print the report as JSON (formatVersion 1)' },
  },
  examples: ['edit validate', 'edit validate --dir edits/capitals --json'],
  async run(ctx) {
    if (ctx.args.length > 0) throw new EditError(`validate takes no arguments (got ${excerpt(ctx.args[0])}); use --dir to check another folder`);
    const dir = stringFlag(ctx, 'dir', 'edits');
    const root = projectRoot(ctx);
    // "0 edit files valid" for a folder that is not there would hide a wrong folder or a broken checkout.
    if (!existsSync(resolve(root, dir))) throw new EditError(`there is no edits folder here (project root ${root})`, { file: resolve(root, dir), hint: 'run from your project, pass --dir, or create the folder (`editops init` does)' });
    const { edits, problems: loadProblems } = await loadEdits(root, dir);
    const lengths = await checkLengths(edits, root, modelDir(ctx, root), ctx.flags.model !== undefined);
    const problems = [...loadProblems, ...withLines([...findConflicts(edits), ...lengths.problems], edits)].sort(byFile);
    const warnings = spacingWarnings(edits).sort(byFile);
    const report: ValidateReport = {
      formatVersion: '1',
      valid: problems.length === 0,
      edits: edits.map((e) => ({ id: e.id, file: e.file, sha256: e.sha256 })),
      problems,
      warnings,
      context: lengths.context,
    };
    if (ctx.flags.json === true) {
      ctx.io.out(JSON.stringify(report, null, 2));
      return report.valid ? 0 : 1;
    }
    if (inGithubActions()) {
      const note = (level: 'error' | 'warning', p: SpecProblem | SpecWarning) =>
        annotation(level, p.pointer === '' ? p.message : `${p.pointer}: ${p.message}`, { file: workspacePath(root, p.file), line: 'line' in p ? p.line : undefined, title: 'edit validate' });
      for (const line of [...warnings.map((w) => note('warning', w)), ...problems.map((p) => note('error', p))]) ctx.io.out(line);
    }
    if (warnings.length > 0) ctx.io.err(warnings.map((w) => `warning: ${formatProblem(w)}`).join('\n'));
    if (report.valid) {
      const checked =
        lengths.context === null
          ? ` (no model folder at ${modelDir(ctx, root)}: token lengths and tasks not checked; --model names one)`
          : ` (token lengths fit the ${lengths.context.tokens}-token context of ${lengths.context.model})`;
      const warned = warnings.length === 0 ? '' : `, ${count(warnings.length, 'warning')}`;
      ctx.io.out(`${count(edits.length, 'edit file')} valid${checked}${warned}`);
    } else {
      ctx.io.err(problems.map(formatProblem).join('\n'));
      const files = new Set(problems.map((p) => p.file)).size;
      ctx.io.err(`${count(problems.length, 'problem')} in ${count(files, 'file')}`);
    }
    return report.valid ? 0 : 1;
  },
};

/**
 * Token lengths against the model's context, when the model folder is there: an explicit --model
 * must exist; the default folder may be missing (validate needs no model), and then nothing is counted.
 */
async function checkLengths(edits: LoadedEdit[], root: string, model: string, explicit: boolean): Promise<{ problems: SpecProblem[]; context: ValidateReport['context'] }> {
  const dir = resolve(root, model);
  if (!explicit && !existsSync(join(dir, MANIFEST))) return { problems: [], context: null };
  const manifest = await readManifest(dir);
  const tokenizer = await loadTokenizer(dir, manifest);
  const limit = modelContext(tokenizer, manifest.config.nPositions, model);
  // With the model: also what plan and apply would refuse, a task its catalogue lacks without an instruction.
  return { problems: [...contextProblems(edits, limit), ...taskProblems(edits, manifest)], context: { model, tokens: limit.context } };
}

function byFile(a: { file: string }, b: { file: string }): number {
  return a.file < b.file ? -1 : a.file > b.file ? 1 : 0;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
