/**
 * GPT-2 in TensorFlow.js: pre-LayerNorm decoder, learned positions, tied embeddings.
 * Parameter names and layouts are Hugging Face GPT-2's (Conv1D weights [in, out], packed
 * c_attn = [Q | K | V] along the output axis, lm_head tied to wte), so a checkpoint loads by name.
 * Reference: Radford et al. 2019; layout as in karpathy/nanoGPT's model.py.
 */
import { tf } from '../tensor/tf.js';
import { embed, gelu, layerNorm, linear, crossEntropy, maskedSoftmax, matMulConstT } from '../tensor/ops.js';
import { Rng } from '../util/random.js';
import { blockIndex, innerDim, type GPTConfig } from './config.js';

export type { GPTConfig } from './config.js';
export { innerDim } from './config.js';

export type Params = Record<string, tf.Tensor>;

/** Extra weights added to named parameters at run time: W_eff = W + Σ deltas[name]. */
export type Deltas = Record<string, tf.Tensor>;

/** Per-layer key/value cache: [B, nh, T, hs] each. */
export interface KVCache {
  k: tf.Tensor4D[];
  v: tf.Tensor4D[];
  length: number;
}

export interface ForwardOptions {
  deltas?: Deltas;
  /** Zero tensors added to the outputs of the named linear layers (e.g. "h.3.mlp.c_fc"): their gradient is δ. */
  probes?: Record<string, tf.Tensor2D>;
  /** Filled with each probed layer's input u [N, in]. */
  captured?: Record<string, tf.Tensor2D>;
  cache?: KVCache;
  /** Requested block indices; filled with the residual stream after each of those blocks, [B·T, E] (kept copies: the caller disposes them). */
  residuals?: Map<number, tf.Tensor2D | null>;
  /**
   * Start at block `layer` from `x`, the residual stream entering it [B·T, E] (the `residuals` entry
   * of block layer − 1 from an earlier forward of the same ids): the blocks before it are not run.
   * The same bits as the whole forward when no delta or probe touches those blocks (the caller's
   * promise: firstTouchedBlock); not with a cache.
   */
  start?: { layer: number; x: tf.Tensor2D };
}

/**
 * The first block whose parameters `names` ("h.<l>.…" parameter names) touch, or 0 when one of them
 * lies outside the blocks (embeddings, ln_f): how far a forward under those deltas may skip.
 */
export function firstTouchedBlock(names: Iterable<string>, nLayer: number): number {
  let first = nLayer;
  for (const name of names) {
    const block = blockIndex(name);
    if (block === undefined) return 0;
    first = Math.min(first, block);
  }
  return first;
}

/** Names and shapes of every parameter, in checkpoint order. */
export function paramShapes(c: GPTConfig): Array<[string, number[]]> {
  const e = c.nEmbd;
  const f = innerDim(c);
  const out: Array<[string, number[]]> = [['wte.weight', [c.vocabSize, e]], ['wpe.weight', [c.nPositions, e]]];
  for (let i = 0; i < c.nLayer; i++) {
    const p = `h.${i}.`;
    out.push(
      [`${p}ln_1.weight`, [e]], [`${p}ln_1.bias`, [e]],
      [`${p}attn.c_attn.weight`, [e, 3 * e]], [`${p}attn.c_attn.bias`, [3 * e]],
      [`${p}attn.c_proj.weight`, [e, e]], [`${p}attn.c_proj.bias`, [e]],
      [`${p}ln_2.weight`, [e]], [`${p}ln_2.bias`, [e]],
      [`${p}mlp.c_fc.weight`, [e, f]], [`${p}mlp.c_fc.bias`, [f]],
      [`${p}mlp.c_proj.weight`, [f, e]], [`${p}mlp.c_proj.bias`, [e]],
    );
  }
  out.push(['ln_f.weight', [e]], ['ln_f.bias', [e]]);
  return out;
}

/** GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/√(2·nLayer). */
export function initParams(c: GPTConfig, seed: number): Params {
  const rng = new Rng(seed);
  const params: Params = {};
  for (const [name, shape] of paramShapes(c)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (name.endsWith('.bias')) {
      // zeros
    } else if (/ln_\w+\.weight$/.test(name)) {
      data.fill(1);
    } else {
      const std = name.endsWith('c_proj.weight') ? 0.02 / Math.sqrt(2 * c.nLayer) : 0.02;
      for (let i = 0; i < size; i++) data[i] = rng.normal() * std;
    }
    params[name] = tf.tensor(data, shape);
  }
  return params;
}

export class GPT {
  /** wteᵀ for the tied head (generation, teacher forcing), made on first use (headTable). */
  private head: { of: tf.Tensor; table: tf.Tensor2D } | undefined;

  /**
   * Rows of the embedding a tokenizer can decode (a checkpoint's embedding may have more, padded):
   * generation never picks a token at or beyond it. Set by loadModelFolder; unset, every row.
   */
  outputVocab: number | undefined;

  constructor(
    readonly config: GPTConfig,
    readonly params: Params,
  ) {}

  private weight(name: string, deltas?: Deltas): tf.Tensor {
    const w = this.params[name];
    const d = deltas?.[name];
    return d === undefined ? w : tf.add(w, d);
  }

  private lin(name: string, x: tf.Tensor2D, opts: ForwardOptions): tf.Tensor2D {
    const y = linear(x, this.weight(`${name}.weight`, opts.deltas) as tf.Tensor2D, this.weight(`${name}.bias`, opts.deltas) as tf.Tensor1D);
    const probe = opts.probes?.[name];
    if (probe === undefined) return y;
    // A kept copy: x itself is released when autodiff's forward scope ends.
    if (opts.captured !== undefined) opts.captured[name] = tf.keep(tf.clone(x));
    return tf.add(y, probe);
  }

  private ln(name: string, x: tf.Tensor2D, opts: ForwardOptions): tf.Tensor2D {
    return layerNorm(x, this.weight(`${name}.weight`, opts.deltas) as tf.Tensor1D, this.weight(`${name}.bias`, opts.deltas) as tf.Tensor1D, this.config.layerNormEps);
  }

  /** Token plus position embeddings [B·T, E] of ids [B, T] at positions past, past + 1, …. */
  private embedTokens(ids: tf.Tensor2D, past: number, opts: ForwardOptions): tf.Tensor2D {
    const e = this.config.nEmbd;
    const [b, t] = ids.shape;
    const flat = tf.reshape(ids, [b * t]) as tf.Tensor1D;
    // one token per row (decoding): every row's position is `past`, one row of wpe added to all
    // (the same sums; tfjs-wasm's gather is slow)
    const wpe = this.weight('wpe.weight', opts.deltas) as tf.Tensor2D;
    const positions = t === 1 ? tf.slice(wpe, [past, 0], [1, e]) : embed(wpe, tf.tile(tf.range(past, past + t, 1, 'int32'), [b]) as tf.Tensor1D);
    return tf.add(embed(this.weight('wte.weight', opts.deltas) as tf.Tensor2D, flat), positions) as tf.Tensor2D;
  }

  /**
   * Hidden states after ln_f, [B·T, E], for ids [B, T]. With a cache, ids are the new tokens
   * only; their positions continue after the cached ones and the cache is extended in place.
   */
  hidden(ids: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    const { nEmbd: e, nHead: nh } = this.config;
    const [b, t] = ids.shape;
    const hs = e / nh;
    const past = opts.cache?.length ?? 0;
    if (past + t > this.config.nPositions) {
      throw new RangeError(`sequence of ${past + t} tokens exceeds the model's context of ${this.config.nPositions}`);
    }
    if (opts.start !== undefined && opts.cache !== undefined) throw new Error('a forward from a later block cannot extend a cache');
    let x = opts.start?.x ?? this.embedTokens(ids, past, opts);
    // Causal mask over [t, past + t]: query i (at position past+i) sees keys j <= past+i. One query
    // per row sees every key: nothing to mask (adding zeros would change no bit).
    const total = past + t;
    let mask: tf.Tensor2D | undefined;
    if (t > 1) {
      const maskData = new Float32Array(t * total);
      for (let i = 0; i < t; i++) for (let j = past + i + 1; j < total; j++) maskData[i * total + j] = -1e9;
      mask = tf.tensor2d(maskData, [t, total]);
    }
    const scale = 1 / Math.sqrt(hs);
    for (let l = opts.start?.layer ?? 0; l < this.config.nLayer; l++) {
      const p = `h.${l}.`;
      const qkv = this.lin(`${p}attn.c_attn`, this.ln(`${p}ln_1`, x, opts), opts); // (B·T, 3E)
      const [q, k, v] = tf.split(qkv, 3, 1).map((z) => tf.transpose(tf.reshape(z, [b, t, nh, hs]), [0, 2, 1, 3]) as tf.Tensor4D); // (B, nh, T, hs)
      let kk = k;
      let vv = v;
      if (opts.cache !== undefined) {
        if (past > 0) {
          kk = tf.concat([opts.cache.k[l], k], 2);
          vv = tf.concat([opts.cache.v[l], v], 2);
        }
        opts.cache.k[l] = kk;
        opts.cache.v[l] = vv;
      }
      const scores = tf.mul(tf.matMul(q, tf.transpose(kk, [0, 1, 3, 2])), scale);
      const att = maskedSoftmax(mask === undefined ? scores : tf.add(scores, mask)); // (B, nh, T, past+T)
      const y = tf.reshape(tf.transpose(tf.matMul(att, vv), [0, 2, 1, 3]), [b * t, e]) as tf.Tensor2D; // (B·T, E)
      x = tf.add(x, this.lin(`${p}attn.c_proj`, y, opts));
      const hmid = gelu(this.lin(`${p}mlp.c_fc`, this.ln(`${p}ln_2`, x, opts), opts)) as tf.Tensor2D;
      x = tf.add(x, this.lin(`${p}mlp.c_proj`, hmid, opts));
      if (opts.residuals?.has(l) === true) opts.residuals.set(l, tf.keep(tf.clone(x)));
    }
    if (opts.cache !== undefined) opts.cache.length = total;
    return this.ln('ln_f', x, opts);
  }

  /** Logits [B·T, V] (tied lm_head: h · wteᵀ); with `rows`, only those of the B·T positions, in that order. */
  logits(ids: tf.Tensor2D, opts: ForwardOptions & { rows?: readonly number[] } = {}): tf.Tensor2D {
    const all = this.hidden(ids, opts);
    // Only the rows asked for go through the head: [rows, V] (a row's logits are the same bits either
    // way). embed: a gather whose gradient exists on wasm (meta-training differentiates through it).
    const h = opts.rows === undefined ? all : embed(all, tf.tensor1d(opts.rows.slice(), 'int32'));
    return this.tiedHead(h, opts.deltas);
  }

  /**
   * h [N, E] times the tied head wteᵀ → [N, V]. matMul's transposeB flag runs ~8× slower on wasm
   * than a plain matMul (0.64 vs 0.085 ms per row at V=4096, E=128), so: a trainable or edited table
   * is transposed per call (linear's gradient has no flags); a fixed one uses the kept transpose
   * (headTable) forward and the table itself for the gradient to h.
   */
  private tiedHead(h: tf.Tensor2D, deltas?: Deltas): tf.Tensor2D {
    const wte = this.weight('wte.weight', deltas) as tf.Tensor2D;
    if ((wte instanceof tf.Variable && wte.trainable) || deltas?.['wte.weight'] !== undefined) return linear(h, tf.transpose(wte) as tf.Tensor2D);
    return matMulConstT(h, wte, this.headTable(deltas));
  }

  /**
   * Next-token logits [B, V] at the last position of ids [B, T], for generation: ln_f output of that
   * position times the tied head; with `rows`, only those of the B rows go through the head, in that
   * order. Rows are independent: a row's logits are the same bits in any batch.
   */
  nextLogits(ids: tf.Tensor2D, opts: ForwardOptions & { rows?: readonly number[] } = {}): tf.Tensor2D {
    const [b, t] = ids.shape;
    const h = this.hidden(ids, opts); // (B·T, E)
    const last = t === 1 ? h : (tf.reshape(tf.slice(tf.reshape(h, [b, t, -1]), [0, t - 1, 0], [b, 1, -1]), [b, -1]) as tf.Tensor2D); // (B, E)
    const picked = opts.rows === undefined ? last : (tf.gather(last, tf.tensor1d(opts.rows.slice(), 'int32')) as tf.Tensor2D);
    return tf.matMul(picked, this.headTable(opts.deltas)); // (B or rows, V)
  }

  /**
   * wteᵀ [E, V] for the tied head (generation, and teacher forcing through tiedHead): a plain
   * matMul with it runs ~8× faster on wasm than matMul's transposeB flag, so a fixed table is
   * transposed once and kept with the model (dispose() frees it); an edited or trainable table is
   * transposed per call.
   */
  private headTable(deltas?: Deltas): tf.Tensor2D {
    const wte = this.params['wte.weight'];
    if (deltas?.['wte.weight'] !== undefined || wte instanceof tf.Variable) return tf.transpose(this.weight('wte.weight', deltas)) as tf.Tensor2D;
    if (this.head?.of !== wte) {
      this.head?.table.dispose();
      this.head = { of: wte, table: tf.keep(tf.transpose(wte)) as tf.Tensor2D };
    }
    return this.head.table;
  }

  /** Logits [N, V] from residual-stream rows x [N, E] taken after the last block: ln_f, then the tied head. */
  readout(x: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    return this.tiedHead(this.ln('ln_f', x, opts), opts.deltas);
  }

  /** Mean cross-entropy of targets [B, T] given ids [B, T]; weights [B, T] mask positions (default all 1). */
  loss(ids: tf.Tensor2D, targets: tf.Tensor2D, weights?: tf.Tensor2D, opts: ForwardOptions = {}): tf.Scalar {
    const n = targets.shape[0] * targets.shape[1];
    const w = weights === undefined ? tf.ones([n]) : tf.reshape(weights, [n]);
    return crossEntropy(this.logits(ids, opts), tf.reshape(targets, [n]) as tf.Tensor1D, w as tf.Tensor1D);
  }

  newCache(): KVCache {
    return { k: [], v: [], length: 0 };
  }

  /** Names of the linear layers (without .weight), e.g. "h.3.mlp.c_fc". */
  linearNames(): string[] {
    return Object.keys(this.params).filter((n) => n.endsWith('.weight') && this.params[n].rank === 2 && n.startsWith('h.')).map((n) => n.slice(0, -'.weight'.length));
  }

  dispose(): void {
    for (const t of Object.values(this.params)) t.dispose();
    this.head?.table.dispose();
    this.head = undefined;
  }
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature?: number;
  topK?: number;
  seed?: number;
  /** Stop when one of these ids is generated (not included in the output). */
  stopIds?: number[];
  deltas?: Deltas;
  /** Recompute the whole sequence per token instead of using the KV cache (for benchmarks). */
  noCache?: boolean;
}

/** Continuation ids of a prompt. The KV cache makes each new token cost one position's work. */
export function generate(model: GPT, prompt: number[], opts: GenerateOptions): number[] {
  const rng = new Rng(opts.seed ?? 0);
  const out: number[] = [];
  const room = model.config.nPositions - prompt.length;
  const steps = Math.min(opts.maxNewTokens, Math.max(0, room));
  const cache = opts.noCache ? undefined : model.newCache();
  let ids = prompt.slice();
  try {
    for (let s = 0; s < steps; s++) {
      const feed = cache === undefined || s === 0 ? ids : ids.slice(-1);
      const row = tf.tidy(() => {
        const logits = model.nextLogits(tf.tensor2d([feed], [1, feed.length], 'int32'), { deltas: opts.deltas, cache }); // (1, V)
        if (cache !== undefined) for (const t of [...cache.k, ...cache.v]) tf.keep(t);
        return logits;
      });
      const data = row.dataSync() as Float32Array;
      row.dispose();
      const next = pickToken(data.subarray(0, model.outputVocab ?? data.length), opts.temperature ?? 0, opts.topK ?? 0, rng);
      if (opts.stopIds?.includes(next)) break;
      out.push(next);
      ids = [...ids, next];
      if (cache !== undefined) pruneCache(cache);
    }
  } finally {
    if (cache !== undefined) {
      pruneCache(cache); // a stop id breaks out before the step's prune: its stale tensors are still live
      for (const t of [...cache.k, ...cache.v]) t.dispose();
    }
  }
  return out;
}

/** Tensors replaced in the cache by a longer concat are kept by tf.keep; dispose the stale ones. */
const live = new WeakMap<KVCache, Set<tf.Tensor>>();
function pruneCache(cache: KVCache): void {
  const prev = live.get(cache) ?? new Set<tf.Tensor>();
  const now = new Set<tf.Tensor>([...cache.k, ...cache.v]);
  for (const t of prev) if (!now.has(t)) t.dispose();
  live.set(cache, now);
}

export function pickToken(logits: Float32Array, temperature: number, topK: number, rng: Rng): number {
  if (temperature <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let idx = Array.from(logits.keys());
  if (topK > 0 && topK < idx.length) idx = idx.sort((a, b) => logits[b] - logits[a]).slice(0, topK);
  const m = Math.max(...idx.map((i) => logits[i]));
  const p = idx.map((i) => Math.exp((logits[i] - m) / temperature));
  const z = p.reduce((a, b) => a + b, 0);
  let r = rng.next() * z;
  for (let j = 0; j < idx.length; j++) {
    r -= p[j];
    if (r <= 0) return idx[j];
  }
  return idx[idx.length - 1];
}

/** What an editor needs of one linear layer for one example: its inputs and output gradients per token. */
export interface LayerCapture {
  /** Layer input u, [N, in] (N = B·T tokens). */
  u: tf.Tensor2D;
  /** Gradient of the loss w.r.t. the layer's output (pre-activation), [N, out]. */
  delta: tf.Tensor2D;
}

/**
 * Runs the model on ids [B, T] and returns, for each named linear layer, its input u and the
 * gradient δ of the loss (targets [B, T], weights [B, T]) w.r.t. its output — explicitly, as data
 * (MEND's ∇W = Σ_t u_t δ_tᵀ). Also returns the loss. The caller owns the returned tensors.
 */
export function captureLayerGrads(
  model: GPT,
  ids: tf.Tensor2D,
  targets: tf.Tensor2D,
  weights: tf.Tensor2D | undefined,
  layers: string[],
  deltas?: Deltas,
): { loss: number; layers: Record<string, LayerCapture> } {
  const n = ids.shape[0] * ids.shape[1];
  const out: Record<string, LayerCapture> = {};
  let loss = 0;
  tf.tidy(() => {
    const probes: Record<string, tf.Tensor2D> = {};
    for (const name of layers) {
      const w = model.params[`${name}.weight`];
      if (w === undefined || w.rank !== 2) throw new RangeError(`"${name}" is not a linear layer of this model`);
      probes[name] = tf.zeros([n, w.shape[1] as number]);
    }
    const captured: Record<string, tf.Tensor2D> = {};
    const order = layers.slice();
    const f = (...zs: tf.Tensor[]) => {
      const p: Record<string, tf.Tensor2D> = {};
      order.forEach((name, i) => (p[name] = zs[i] as tf.Tensor2D));
      return model.loss(ids, targets, weights, { deltas, probes: p, captured });
    };
    const { value, grads } = tf.valueAndGrads(f)(order.map((name) => probes[name]));
    loss = value.dataSync()[0];
    order.forEach((name, i) => {
      out[name] = { u: captured[name], delta: tf.keep(grads[i] as tf.Tensor2D) };
    });
  });
  return { loss, layers: out };
}
