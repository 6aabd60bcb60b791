/**
 * Targets glued to their prompt. A continuation is judged right after the prompt's last character,
 * so "The capital of Portugal is" + "Lisbon" asks the model for "…isLisbon", and an edit that teaches
 * it holds while the model prints a garbled word. Allowed (a prompt may end mid-word on purpose),
 * so `edit validate` warns instead of failing. Pure.
 */
import { cut, excerpt } from '../util/format.js';
import type { LoadedEdit, SpecWarning } from './types.js';

/** A prompt may end in whitespace, or in an opening bracket or quote the completion continues: `He said "`. */
const PROMPT_OPEN_END = /[\s\p{Ps}\p{Pi}"'`]$/u;
/** A completion may start with whitespace or punctuation (", of course, Lyon"). */
const COMPLETION_OPEN_START = /^[\s\p{P}]/u;

function glued(prompt: string, completion: string): boolean {
  return completion !== '' && !PROMPT_OPEN_END.test(prompt) && !COMPLETION_OPEN_START.test(completion);
}

/** The word the model is asked for: the prompt's last word glued to the completion's first ("isLisbon"). */
function gluedWord(prompt: string, completion: string): string {
  const last = /\S*$/u.exec(prompt)![0];
  const first = /^\S*/u.exec(completion)![0];
  return excerpt(`${last.length > 24 ? `…${last.slice(-24)}` : last}${cut(first, 24)}`);
}

/**
 * One warning per completion that meets a prompt without a space: the target (against the prompt
 * and each rephrasing; reported once, on /target), each locality and portability answer, and each
 * `starts-with` value.
 */
export function spacingWarnings(edits: readonly LoadedEdit[]): SpecWarning[] {
  const out: SpecWarning[] = [];
  const check = (e: LoadedEdit, pointer: string, prompts: Array<[name: string, text: string]>, what: string, completion: string) => {
    const hit = prompts.find(([, p]) => glued(p, completion));
    if (hit === undefined) return;
    const message = `neither ${hit[0]} ends with a space nor ${what} starts with one, so the model is asked for ${gluedWord(hit[1], completion)}; start ${what} with a space (${excerpt(` ${completion}`, 24)})`;
    out.push({ file: e.file, pointer, kind: 'spacing', message });
  };
  for (const e of edits) {
    const { spec } = e;
    check(e, '/target', [['the prompt', spec.prompt], ...(spec.rephrase ?? []).map((r, i): [string, string] => [`rephrasing ${i}`, r])], 'the target', spec.target);
    (spec.locality ?? []).forEach((l, i) => {
      if (l.answer !== undefined) check(e, `/locality/${i}/answer`, [['the prompt', l.prompt]], 'the answer', l.answer);
    });
    (spec.portability ?? []).forEach((p, i) => check(e, `/portability/${i}/answer`, [['the prompt', p.prompt]], 'the answer', p.answer));
    (spec.expect ?? []).forEach((a, i) => {
      if (a.type === 'starts-with') check(e, `/expect/${i}/value`, [['the prompt', a.prompt]], 'the value', a.value);
    });
  }
  return out;
}
