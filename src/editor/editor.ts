/**
 * The editor interface: every backend turns edit requests into weight deltas computed against
 * the base weights (batch semantics: deltas add, order does not matter, removal is exact).
 */
import type { GPT } from '../model/gpt2.js';
import type { Tokenizer } from '../model/tokenizer.js';
import type { Delta } from '../state/deltas.js';

export interface EditRequest {
  id: string;
  /** The task name and the instruction text that describes it (InstructEdit wraps prompts with them). */
  task: string;
  instruction: string;
  prompt: string;
  target: string;
  /** Rephrasings: MEND-family editors may use them in meta-training, never at edit time. */
  rephrase: string[];
}

export interface EditorContext {
  model: GPT;
  tokenizer: Tokenizer;
  /** Linear layers the editor may change ("h.3.mlp.c_fc"). */
  layers: string[];
  onProgress?: (done: number, total: number, id: string) => void;
}

export interface Editor {
  /** "ft", "mend", "instructedit". */
  readonly method: string;
  computeDeltas(ctx: EditorContext, edits: EditRequest[]): Promise<Map<string, Delta>>;
}
