/**
 * Edits that cannot fit the model's context, found before any weights are loaded: every prompt
 * plus the text the model must produce after it (target, answer, scored value), in tokens. Checks
 * run on greedy generation and teacher-forced scoring; a prompt that leaves no room fails there
 * without naming the file, so `edit validate` names the file, the field, the length and the limit.
 * Pure: the tokenizer comes in as a counting function.
 */
import { excerpt } from '../util/format.js';
import type { LoadedEdit, SpecProblem } from './types.js';

export interface ContextLimit {
  /** Tokens a text encodes to (the model's tokenizer). */
  countTokens(text: string): number;
  /** The model's context (nPositions). */
  context: number;
  /** The model folder, for messages ("models/default"). */
  model: string;
}

/** The limit of a model: its tokenizer counts, its config's nPositions is the context. */
export function modelContext(tokenizer: { encode(text: string): number[] }, nPositions: number, model: string): ContextLimit {
  return { countTokens: (text) => tokenizer.encode(text).length, context: nPositions, model };
}

/**
 * Per prompt: its tokens plus those of the text judged after it must fit the context (a generated
 * target must be generated whole; a scored completion is fed whole but its last token). A prompt
 * judged by free generation (locality without an answer, string `expect` checks) needs room for one
 * token. Reported on the prompt's pointer.
 */
export function contextProblems(edits: readonly LoadedEdit[], limit: ContextLimit): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const tokens = memo(limit.countTokens);
  const check = (e: LoadedEdit, pointer: string, prompt: string, after: { text: string; what: string } | undefined, scored = false) => {
    const p = tokens(prompt);
    // Generation must make room for at least one token; a scored completion's last token is not fed.
    const a = after === undefined ? 1 : scored ? tokens(after.text) - 1 : Math.max(1, tokens(after.text));
    if (p + a <= limit.context) return;
    const detail = after === undefined ? `${p} tokens, and generation needs 1 more` : `${p} tokens + ${tokens(after.text)} of ${after.what} ${excerpt(after.text)}`;
    problems.push({
      file: e.file,
      pointer,
      kind: 'length',
      message: `is ${detail}: ${p + a} > ${limit.context}, the context of ${limit.model}; shorten it`,
    });
  };
  for (const e of edits) {
    const { spec } = e;
    const target = { text: spec.target, what: 'the target' };
    check(e, '/prompt', spec.prompt, target);
    (spec.rephrase ?? []).forEach((r, i) => check(e, `/rephrase/${i}`, r, target));
    (spec.locality ?? []).forEach((l, i) => check(e, `/locality/${i}/prompt`, l.prompt, l.answer === undefined ? undefined : { text: l.answer, what: 'its answer' }));
    (spec.portability ?? []).forEach((p, i) => check(e, `/portability/${i}/prompt`, p.prompt, { text: p.answer, what: 'its answer' }));
    (spec.expect ?? []).forEach((a, i) => {
      const scored = a.type === 'prob' || a.type === 'rank';
      const generated = a.type === 'starts-with' && a.value !== '';
      check(e, `/expect/${i}/prompt`, a.prompt, scored || generated ? { text: a.value, what: 'its value' } : undefined, scored);
    });
  }
  return problems;
}

/** Edit sets repeat prompts and targets (a locality prompt in every edit): count each text once. */
function memo(count: (text: string) => number): (text: string) => number {
  const seen = new Map<string, number>();
  return (text) => {
    let n = seen.get(text);
    if (n === undefined) seen.set(text, (n = count(text)));
    return n;
  };
}
