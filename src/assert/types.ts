/**
 * Assertions judge what a model really does. A failed assertion is data (pass: false with a
 * reason a person can act on: expected vs actual), never an exception.
 */
import type { AssertionSpec } from '../spec/types.js';

/** What assertions may ask of a model (edited or base). Implemented over a GPT + tokenizer in src/apply. */
export interface Judge {
  /** Greedy continuation (stops at a newline or end of text), decoded. */
  generate(prompt: string, maxTokens: number): string;
  /** Probability of the whole completion after the prompt (product over its tokens). */
  prob(prompt: string, completion: string): number;
  /** 1-based rank of the completion's first token in the next-token distribution. */
  rank(prompt: string, completion: string): number;
  /** Teacher-forced token accuracy of the completion (EasyEdit's metric): fraction of its tokens that are the argmax. */
  tokenAccuracy(prompt: string, completion: string): number;
  /** Tokens the text encodes to: sizes the greedy generation of implied checks (target tokens + 2). Without it, the text's UTF-8 byte length bounds it. */
  countTokens?(text: string): number;
}

export interface AssertionResult {
  pass: boolean;
  /** 0..1: how close (1 when passed). */
  score: number;
  /** One line: what was expected and what the model did. */
  reason: string;
  /** The model's actual output, for the report beside the expectation. */
  actual?: string;
}

export type AssertionHandler = (args: { assertion: AssertionSpec; judge: Judge; inverse: boolean }) => AssertionResult;

/** The implied checks of every edit, and the user's own. */
export type CheckKind = 'reliability' | 'generalization' | 'locality' | 'portability' | 'expect';

export interface CheckResult extends AssertionResult {
  kind: CheckKind;
  prompt: string;
  /** What was expected, in words or as text (" Lyon", "= base output", "not-contains Paris"). */
  expected: string;
  /** Set on automatic locality neighbours (not listed in the edit): the fact's subject and relation. */
  neighbour?: { subject: string; relation: string };
  /**
   * A failed locality check whose output now starts with the target of edits of the set: their ids
   * (the checked edit's own included). Where set interference shows: one fact moved by one edit fails
   * every edit that has it as a neighbour.
   */
  movedTo?: string[];
  /** An `expect` assertion's own `description` from the edit file, shown beside its prompt in reports. */
  description?: string;
}
