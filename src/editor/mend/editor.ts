/**
 * `mend` and `instructedit`: a hypernetwork (network.ts) maps each edit's rows (capture.ts) to
 * value shifts, and one joint least-squares solve over the whole set turns them into ΔW per edited
 * layer (solve.ts; MALMEN's aggregation, memit's convention). `instructedit` is `mend` whose network
 * also reads the edit's instruction as a conditioning vector; keys always come from the prompt as
 * the user types it (FACTS: wrapped keys make edits fire only on wrapped text).
 * Rows hold what depends only on the edit and the base (u, δ, the instruction vector), not the
 * network's output, so a retrained network reuses every cached row.
 */
import { tf } from '../../tensor/tf.js';
import { EditError } from '../../errors.js';
import type { GPT } from '../../model/gpt2.js';
import type { Tokenizer } from '../../model/tokenizer.js';
import type { Delta } from '../../model/weight-change.js';
import type { EditorContext, EditRequest, EditRows, LayerCapacity, SetEditor } from '../editor.js';
import { concat } from '../linalg.js';
import { blockOf, HYPER_DEFAULTS, INSTRUCTEDIT_DEFAULTS, MEND_DEFAULTS, type HyperSettings } from '../settings.js';
import { captureRows, instructionVector, rowSequence, sequenceKeys } from './capture.js';
import { preservedSequences, preservedText } from '../set.js';
import { instructionMode, type HyperNet } from './network.js';
import { solveOperator, solveValues } from './solve.js';
import { refineValues } from './refine.js';
import type { RowSequence } from '../batch.js';

export type { HyperSettings };

/** InstructEdit's template (arXiv 2402.16123): the prompt wrapped with its task and instruction. */
export function wrapPrompt(task: string, instruction: string, prompt: string): string {
  return `Task: ${task}\nDescription: ${instruction}\nInput: ${prompt}`;
}

export { MEND_DEFAULTS, INSTRUCTEDIT_DEFAULTS };

/** Row tensor names of one edit: ids, positions, "<layer>.u", "<layer>.delta", and "cond" when conditioned. */
export const rowName = {
  u: (layer: string) => `${layer}.u`,
  delta: (layer: string) => `${layer}.delta`,
  /** Solve keys when the network reads other rows than the solve (wrapped prompts): the prompt as typed. */
  key: (layer: string) => `${layer}.key`,
  cond: 'cond',
} as const;

/**
 * Every edit's rows against the base, for `layers`; with condDim > 0 also its instruction vector.
 * With `wrap`, u and δ come from the prompt wrapped in InstructEdit's template, and the solve's keys
 * (`<layer>.key`) from the prompt as typed, at the same row positions (prompt end, target tokens).
 * Edits of one token length are captured together; each edit's rows are the bytes it gets alone.
 */
export function hyperRows(model: GPT, tokenizer: Tokenizer, layers: readonly string[], edits: readonly EditRequest[], condDim: number, wrap = false): Map<string, EditRows> {
  if (condDim > 0 && condDim !== model.config.nEmbd) throw new EditError(`the hypernetwork's conditioning is ${condDim} wide; this model's instruction vectors are ${model.config.nEmbd}`);
  const seqs = edits.map((e) => rowSequence(tokenizer, model.config.nPositions, e.prompt, e.target, `edits/${e.id}.json`));
  const wrapped = wrap ? edits.map((e) => rowSequence(tokenizer, model.config.nPositions, wrapPrompt(e.task, e.instruction, e.prompt), e.target, `edits/${e.id}.json`, { keepTail: true })) : undefined;
  wrapped?.forEach((w, i) => {
    if (w.positions.length !== seqs[i].positions.length) throw new EditError('the wrapped prompt splits the target into other tokens than the prompt as typed', { file: `edits/${edits[i].id}.json`, pointer: '/target' });
  });
  const plain = captureRows(model, seqs, layers);
  const captured = wrapped === undefined ? plain : captureRows(model, wrapped, layers);
  const out = new Map<string, EditRows>();
  const vectors = new Map<string, Float32Array>(); // one forward per distinct instruction text
  const vectorOf = (text: string) => vectors.get(text) ?? vectors.set(text, instructionVector(model, tokenizer, text)).get(text)!;
  edits.forEach((e, i) => {
    const s = seqs[i];
    const n = s.positions.length;
    const tensors: EditRows['tensors'] = {
      ids: { dtype: 'I32', shape: [s.ids.length], data: Int32Array.from(s.ids) },
      positions: { dtype: 'I32', shape: [n], data: Int32Array.from(s.positions) },
      targets: { dtype: 'I32', shape: [n], data: Int32Array.from(s.targets) },
    };
    for (const l of layers) {
      const { u, delta } = captured[i][l];
      tensors[rowName.u(l)] = { dtype: 'F32', shape: [n, u.length / n], data: u };
      tensors[rowName.delta(l)] = { dtype: 'F32', shape: [n, delta.length / n], data: delta };
      if (wrapped !== undefined) tensors[rowName.key(l)] = { dtype: 'F32', shape: [n, u.length / n], data: plain[i][l].u };
    }
    if (condDim > 0) tensors[rowName.cond] = { dtype: 'F32', shape: [condDim], data: vectorOf(e.instruction).slice() };
    out.set(e.id, { tensors });
  });
  return out;
}

/** One layer's rows of a set stacked in the given order: u [n, dk], δ [n, d], the solve's keys [n, dk] (u unless wrapped), and c [n, condDim] (each edit's vector per row). */
export function stackRows(rows: ReadonlyArray<[string, EditRows]>, layer: string, condDim: number, wrap = false): StackedRows {
  const part = (id: string, r: EditRows, name: string) => {
    const t = r.tensors[name];
    if (t === undefined || !(t.data instanceof Float32Array)) throw new EditError(`cached rows of edit "${id}" have no "${name}": recompute them with \`edit apply --refresh\``);
    return t;
  };
  const us = rows.map(([id, r]) => part(id, r, rowName.u(layer)));
  const ds = rows.map(([id, r]) => part(id, r, rowName.delta(layer)));
  const n = us.reduce((a, t) => a + t.shape[0], 0);
  const u = concat(us.map((t) => t.data as Float32Array));
  const keys = wrap ? concat(rows.map(([id, r]) => part(id, r, rowName.key(layer)).data as Float32Array)) : u;
  const out: StackedRows = { n, u, delta: concat(ds.map((t) => t.data as Float32Array)), keys };
  if (condDim > 0) {
    const cond = new Float32Array(n * condDim);
    let row = 0;
    rows.forEach(([id, r], i) => {
      const c = part(id, r, rowName.cond);
      if (c.data.length !== condDim) throw new EditError(`cached rows of edit "${id}" have a conditioning vector of ${c.data.length}, the network reads ${condDim}: recompute them with \`edit apply --refresh\``);
      for (let k = 0; k < us[i].shape[0]; k++, row++) cond.set(c.data as Float32Array, row * condDim);
    });
    out.cond = cond;
  }
  return out;
}

export interface StackedRows {
  n: number;
  u: Float32Array;
  delta: Float32Array;
  keys: Float32Array;
  cond?: Float32Array;
}


/** An edit's teacher-forced sequence from its cached rows (ids, row positions, their targets). */
function sequenceOf(id: string, r: EditRows): RowSequence {
  const ids = r.tensors.ids;
  const positions = r.tensors.positions;
  const targets = r.tensors.targets;
  if (ids === undefined || positions === undefined || targets === undefined) throw new EditError(`cached rows of edit "${id}" have no target tokens: recompute them with \`edit apply --refresh\``);
  return { ids: Array.from(ids.data as Int32Array), positions: Array.from(positions.data as Int32Array), targets: Array.from(targets.data as Int32Array) };
}

export class HyperEditor implements SetEditor {
  readonly joint = true;
  constructor(
    readonly settings: HyperSettings,
    readonly net: HyperNet,
  ) {
    const instructed = instructionMode(net.shape) !== 'none';
    if (instructed !== (settings.method === 'instructedit')) {
      throw new EditError(settings.method === 'instructedit' ? 'the instructedit editor needs a hypernetwork trained with instructions (conditioning or wrapping)' : 'the mend editor needs a hypernetwork trained without instructions');
    }
  }

  /** u and δ from the wrapped prompt (keys stay the prompt as typed). */
  get wrap(): boolean {
    return instructionMode(this.net.shape) === 'wrap';
  }

  get method(): string {
    return this.settings.method;
  }

  /** The layers the network was trained for; each must be editable. */
  editedLayers(editable: string[]): string[] {
    for (const l of this.net.shape.layers) if (!editable.includes(l)) throw new EditError(`the hypernetwork edits "${l}", which is not among the model's editableLayers`);
    return [...this.net.shape.layers].sort((a, b) => blockOf(a) - blockOf(b));
  }

  async computeRows(ctx: EditorContext, edits: EditRequest[]): Promise<Map<string, EditRows>> {
    const layers = this.editedLayers(ctx.layers);
    const out = new Map<string, EditRows>();
    const chunk = 32; // progress between chunks; captureRows batches within one
    for (let at = 0; at < edits.length; at += chunk) {
      const part = edits.slice(at, at + chunk);
      for (const [id, r] of hyperRows(ctx.model, ctx.tokenizer, layers, part, this.net.shape.condDim, this.wrap)) out.set(id, r);
      ctx.onProgress?.(Math.min(at + chunk, edits.length), edits.length, part[part.length - 1].id);
      await Promise.resolve();
    }
    return out;
  }

  async solve(ctx: EditorContext, rows: Array<[string, EditRows]>): Promise<Delta> {
    const out: Delta = { layers: {} };
    if (rows.length === 0) return out;
    const layers = this.editedLayers(ctx.layers);
    const { condDim, valueDim } = this.net.shape;
    const mu = this.settings.preserveWeight ?? 0;
    const kp = mu > 0 && (ctx.preserve?.length ?? 0) > 0 ? sequenceKeys(ctx.model, preservedSequences(ctx.tokenizer, ctx.model.config.nPositions, ctx.preserve!), layers) : undefined;
    const parts = layers.map((layer) => {
      const stats = ctx.stats?.layers[layer];
      if (stats === undefined) throw new EditError(`the ${this.method} editor needs key statistics for "${layer}": run \`edit model stats\``);
      const s = stackRows(rows, layer, condDim, this.wrap);
      const v = tf.tidy(() => {
        const cond = s.cond === undefined ? undefined : tf.tensor2d(s.cond, [s.n, condDim]);
        return this.net.shift(layer, tf.tensor2d(s.u, [s.n, stats.dim]), tf.tensor2d(s.delta, [s.n, valueDim]), cond);
      });
      const values = Float32Array.from(v.dataSync());
      v.dispose();
      const preserve = kp === undefined ? undefined : { keys: kp[layer], n: kp[layer].length / stats.dim };
      return { layer, s, stats, values: values as Float32Array, preserve };
    });
    const refine = { ...HYPER_DEFAULTS, ...this.settings }; // settings built by hand may leave fields out
    const steps = refine.refineSteps;
    if (steps > 0) {
      const seqs = rows.map(([id, r]) => sequenceOf(id, r));
      const refined = refineValues(
        ctx.model,
        ctx.tokenizer,
        parts.map((p) => ({ layer: p.layer, operator: solveOperator(p.s.keys, p.s.n, p.stats.dim, p.stats.second, this.settings, p.preserve), dk: p.stats.dim, values: p.values, d: valueDim })),
        seqs,
        (ctx.preserve ?? []).map(preservedText),
        { steps, lr: refine.refineLr, cLoc: refine.refineLocality, batch: refine.refineBatch, known: refine.refineKnown, knownBatch: refine.refineKnownBatch },
      );
      parts.forEach((p, i) => (p.values = refined[i]));
    }
    for (const p of parts) {
      const w = solveValues(p.s.keys, p.values, p.s.n, p.stats.dim, valueDim, p.stats.second, this.settings, p.preserve);
      out.layers[`${p.layer}.weight`] = { kind: 'dense', shape: [p.stats.dim, valueDim], data: w };
      await Promise.resolve();
    }
    return out;
  }

  capacity(ctx: { layers: string[]; keyDims: Record<string, number> }, rows: Array<[string, EditRows]>): LayerCapacity[] {
    const n = rows.reduce((a, [, r]) => a + (r.tensors.positions?.shape[0] ?? 0), 0);
    return this.editedLayers(ctx.layers).map((layer) => ({ layer, rows: n, keyDim: ctx.keyDims[layer] ?? 0 }));
  }

  dispose(): void {
    this.net.dispose();
  }
}
