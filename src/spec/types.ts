/**
 * Edit files: one JSON file per edit under edits/, checked by schemas/edit.schema.json.
 * The edit's id is its path relative to edits/ without ".json".
 */

/** Assertion types on greedy generation (string checks) or on the model's distribution (prob, rank). */
export const STRING_ASSERTIONS = ['equals', 'contains', 'icontains', 'regex', 'starts-with'] as const;
export type StringAssertionType = (typeof STRING_ASSERTIONS)[number];
export type AssertionType = StringAssertionType | `not-${StringAssertionType}` | 'prob' | 'rank';

export interface AssertionSpec {
  type: AssertionType;
  prompt: string;
  /** Expected text (string checks, prob and rank: the completion whose probability or rank is judged). */
  value: string;
  /** Greedy tokens generated for string checks (default 16, stops at a newline). */
  maxTokens?: number;
  /** prob: the completion's probability must be ≥ min and/or ≤ max. */
  min?: number;
  max?: number;
  /** rank: the completion's first token must be among the top k (default 1). */
  k?: number;
  /** Free text shown in reports. */
  description?: string;
}

export interface LocalityPrompt {
  prompt: string;
  /** With an answer: the model must still give it. Without: output must equal the pre-edit base model's. */
  answer?: string;
}

export interface PortabilityPrompt {
  prompt: string;
  answer: string;
}

/** Fraction of an edit's prompts of each kind that must pass (0..1). */
export interface ThresholdOverrides {
  reliability?: number;
  generalization?: number;
  locality?: number;
  portability?: number;
}

export interface EditSpec {
  $schema?: string;
  version: 1;
  /** A task of the model's catalogue (counterfact, recent, convsent, zsre, …) or a new one described by `instruction`. */
  task: string;
  instruction?: string;
  subject?: string;
  /** Names the fact edited (with subject) for conflict detection, e.g. "capital". */
  relation?: string;
  prompt: string;
  /** The new completion, with its leading space (" Lyon"). */
  target: string;
  rephrase?: string[];
  locality?: LocalityPrompt[];
  /** Automatic locality neighbours (src/assert/neighbours.ts): how many (default 8), or false for none. */
  neighbours?: false | { count?: number };
  portability?: PortabilityPrompt[];
  expect?: AssertionSpec[];
  thresholds?: ThresholdOverrides;
  metadata?: Record<string, unknown>;
}

export interface LoadedEdit {
  /** Path under edits/ without .json, with forward slashes: "capitals/france". */
  id: string;
  /** Path of the file relative to the repository root (for messages). */
  file: string;
  spec: EditSpec;
  /** sha256 of the canonical JSON of spec (key order and whitespace do not matter). */
  sha256: string;
  /** The file's text as parsed (problems found later give the line of their pointer from it). */
  source?: string;
}

/** A problem found in edit files: data, not an exception. */
export interface SpecProblem {
  file: string;
  /** JSON pointer inside the file ("" for the whole file). */
  pointer: string;
  /** 1-based line of the pointer's member (its key) or array item in the file, when the file was read as JSON. */
  line?: number;
  message: string;
  /** encoding: not UTF-8, a NUL or a lone surrogate; length: longer than the model's context (validate with a model folder). */
  kind: 'schema' | 'json' | 'conflict' | 'duplicate' | 'io' | 'encoding' | 'length';
}

/** Something in an edit file that is allowed but probably not meant: `edit validate` prints it and still exits 0. */
export interface SpecWarning {
  file: string;
  pointer: string;
  message: string;
  /** spacing: prompt and target meet without a space, so the model is asked for a glued word ("isLisbon"). */
  kind: 'spacing';
}

/** `file: /pointer: message (line N)`: the pointer left out when the problem is the whole file, the line when known. */
export function formatProblem(p: SpecProblem | SpecWarning): string {
  const at = p.pointer === '' ? '' : ` ${p.pointer}:`;
  const line = 'line' in p && p.line !== undefined ? ` (line ${p.line})` : '';
  return `${p.file}:${at} ${p.message}${line}`;
}
