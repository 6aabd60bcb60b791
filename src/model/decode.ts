/**
 * Generation and teacher-forced scores of many sequences in one pass over their prefix tree.
 *
 * Judging asks for many short sequences that share their beginnings: an edit's prompt, its
 * rephrasings and the neighbours' probes start with the same words, and every scored completion
 * starts with a prompt that is generated from too (on the bench's judge workload the edited judge's
 * 420 prompts have 2,692 tokens and 1,162 distinct prefixes). The tree is walked from the root:
 * in a step every row moves by the same number of tokens (one where the tree branches or logits are
 * needed, a whole unbranched stretch otherwise, so a lone prompt is one forward), its KV cache its
 * parent's rows (gathered) plus its own columns, so there is no padding; a node shared by many
 * sequences is computed once; a generation continues from its prompt's node in the same steps; a
 * scored completion is a branch of its prompt whose log-softmax rows are read on the way. Only the
 * rows whose logits something needs go through the head.
 *
 * The same bits as alone: a row's computation continues its own prefix's cache, which gives exactly
 * the bits of that prefix's single forward (attention's softmax sums along the row, maskedSoftmax;
 * linear layers compute each row on its own; tested), so the ids are generate()'s and the scores
 * scorePairs' for each sequence alone.
 */
import { tf } from '../tensor/tf.js';
import { logSoftmax } from '../tensor/ops.js';
import { Rng } from '../util/random.js';
import { pickToken, type Deltas, type GPT, type KVCache } from './gpt2.js';
import { addScoredRow, checkPair, newScore, scored, type ScorePair, type Scored, type ScoreSum } from './score.js';

/** A prompt to continue, with its token budget. */
export interface Continuation {
  prompt: number[];
  budget: number;
}

export interface DecodeOptions {
  /** 0 = greedy. */
  temperature?: number;
  topK?: number;
  /** Each generation samples from its own generator seeded with this, as generate() does alone. */
  seed?: number;
  /** A generation stops when one of these ids is generated (not included in its output). */
  stopIds?: readonly number[];
  deltas?: Deltas;
  /** Sequences per tree (bounds the rows of a step and their caches); default: up to 1,024, fewer where their caches and logits would pass 128 MB. */
  maxBatch?: number;
}

/** Bytes a tree may hold at its deepest step, KV caches and a step's logits (the default maxBatch fits in this). */
const TREE_BYTES = 128e6;

/** Sequences per tree at most (one tree: fewer steps; on the default model ~800 fit TREE_BYTES). */
const MAX_BATCH = 1024;

/** One sequence of a tree: a prompt to continue (gen) or a pair to score (its prompt + completion minus the last token). */
interface Item {
  seq: number[];
  gen?: { steps: number; rng: Rng; out: number[] };
  score?: { promptLength: number; completion: number[]; sum: ScoreSum };
}

interface Node {
  token: number;
  children: Map<number, Node>;
  /** Items whose prompt ends here (generations start from this node's logits). */
  gens: Item[];
  /** Scored items whose completion token `at` this node's logits predict. */
  scores: Array<{ item: Item; at: number }>;
}

/** A row of one step: a tree node, or a generation continuing past its prompt. */
type Row = { node: Node } | { gen: Item };

/**
 * Continuations (ids, in order) of `gens` and teacher-forced numbers of `scores` (each with a
 * non-empty prompt and completion), each what generate() and scorePairs() give for it alone.
 */
export function decodeTree(model: GPT, gens: readonly Continuation[], scores: readonly ScorePair[], opts: DecodeOptions = {}): { ids: number[][]; scores: Scored[] } {
  const context = model.config.nPositions;
  const items: Item[] = [];
  gens.forEach((g, index) => {
    if (g.prompt.length === 0) throw new RangeError(`prompt ${index} is empty: generation needs at least one token`);
    const steps = Math.min(g.budget, Math.max(0, context - g.prompt.length));
    items.push({ seq: g.prompt, gen: { steps, rng: new Rng(opts.seed ?? 0), out: [] } });
  });
  scores.forEach((p, index) => {
    checkPair(p, index);
    const seq = [...p.prompt, ...p.completion.slice(0, -1)];
    if (seq.length > context) throw new RangeError(`sequence of ${seq.length} tokens exceeds the model's context of ${context}`);
    items.push({ seq, score: { promptLength: p.prompt.length, completion: p.completion, sum: newScore() } });
  });
  // neighbours in this order share their prefixes; each tree takes a run of them
  const order = items.filter((it) => it.gen === undefined || it.gen.steps > 0).sort((a, b) => compareIds(a.seq, b.seq));
  // a row's cache per token (K and V of every layer), and a needed row's logits and log-softmax
  const perToken = 2 * model.config.nLayer * model.config.nEmbd * 4;
  const perRow = 2 * model.config.vocabSize * 4;
  for (let at = 0; at < order.length; ) {
    let end = at;
    let depth = 0;
    while (end < order.length) {
      const d = Math.max(depth, order[end].seq.length + (order[end].gen?.steps ?? 0));
      const n = end - at + 1;
      if (end > at && (n > (opts.maxBatch ?? MAX_BATCH) || (opts.maxBatch === undefined && n * (d * perToken + perRow) > TREE_BYTES))) break;
      depth = d;
      end++;
    }
    walk(model, order.slice(at, end), opts);
    at = end;
  }
  return {
    ids: items.flatMap((it) => (it.gen === undefined ? [] : [it.gen.out])),
    scores: items.flatMap((it) => (it.score === undefined ? [] : [scored(it.score.sum)])),
  };
}

export interface BatchGenerateOptions extends DecodeOptions {
  /** New tokens per prompt: one budget for all, or one per prompt. */
  maxNewTokens: number | readonly number[];
}

/** Continuations of many prompts (decodeTree without scores), each exactly what generate() returns for that prompt alone. */
export function generateBatch(model: GPT, prompts: readonly number[][], opts: BatchGenerateOptions): number[][] {
  return decodeTree(model, continuations(prompts, opts.maxNewTokens), [], opts).ids;
}

/** Prompts with their budgets: one for all, or one per prompt. */
export function continuations(prompts: readonly number[][], maxNewTokens: number | readonly number[]): Continuation[] {
  const budgets = prompts.map((_, i) => (typeof maxNewTokens === 'number' ? maxNewTokens : maxNewTokens[i]));
  if (typeof maxNewTokens !== 'number' && maxNewTokens.length !== prompts.length) throw new RangeError(`${prompts.length} prompts but ${maxNewTokens.length} token budgets`);
  return prompts.map((prompt, i) => ({ prompt, budget: budgets[i] }));
}

/** Lexicographic order of id sequences: sequences sharing a prefix sit side by side. */
export function compareIds(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Tokens a row starting at `node` can take in one forward: the node and its lone descendants that need no logits. */
function chain(node: Node): number {
  let n = 1;
  for (let at = node; at.children.size === 1 && at.gens.length === 0 && at.scores.length === 0; at = only(at)) n++;
  return n;
}

function only(node: Node): Node {
  return node.children.values().next().value as Node;
}

function newNode(token: number): Node {
  return { token, children: new Map(), gens: [], scores: [] };
}

/** The tree of `items` walked from the root, the generations continuing past their prompts in the same steps. */
function walk(model: GPT, items: readonly Item[], opts: DecodeOptions): void {
  const root = newNode(-1);
  for (const item of items) {
    let node = root;
    item.seq.forEach((token, i) => {
      let child = node.children.get(token);
      if (child === undefined) node.children.set(token, (child = newNode(token)));
      node = child;
      const s = item.score;
      if (s !== undefined && i + 1 >= s.promptLength) node.scores.push({ item, at: i + 1 - s.promptLength });
    });
    if (item.gen !== undefined) node.gens.push(item);
  }
  const stop = new Set(opts.stopIds ?? []);
  const vocab = (v: number) => Math.min(v, model.outputVocab ?? v);
  let rows: Row[] = [...root.children.values()].map((node) => ({ node }));
  const cache: KVCache = model.newCache();
  const owned = () => [...cache.k, ...cache.v];
  try {
    while (rows.length > 0) {
      // Every row moves by the same number of tokens: along a chain of nodes that neither branch
      // nor need logits, as far as the shortest row's chain goes (a lone prompt in one forward).
      const span = Math.min(...rows.map((r) => ('node' in r ? chain(r.node) : 1)));
      const feed = rows.map((r) => {
        if ('gen' in r) return [r.gen.gen!.out[r.gen.gen!.out.length - 1]];
        const tokens = [r.node.token];
        while (tokens.length < span) (r.node = only(r.node)), tokens.push(r.node.token);
        return tokens;
      });
      const wanted: number[] = [];
      const scoring: number[] = [];
      rows.forEach((r, i) => {
        if ('gen' in r || r.node.gens.length > 0) wanted.push(i);
        if ('node' in r && r.node.scores.length > 0) scoring.push(i);
      });
      const need = [...new Set([...wanted, ...scoring])].sort((a, b) => a - b);
      const slot = new Int32Array(rows.length).fill(-1);
      need.forEach((r, k) => (slot[r] = k));
      const before = owned();
      let logits: tf.Tensor2D | undefined;
      let logp: tf.Tensor2D | undefined;
      try {
        [logits, logp] = tf.tidy(() => {
          const out = model.nextLogits(tf.tensor2d(feed, [feed.length, span], 'int32'), { deltas: opts.deltas, cache, rows: need }); // (need, V)
          for (const x of owned()) tf.keep(x);
          // every needed row's log-softmax (row by row: the bits a row gets alone), read for the scored ones
          return [out, scoring.length === 0 ? undefined : logSoftmax(out)] as [tf.Tensor2D, tf.Tensor2D | undefined];
        });
      } finally {
        tf.dispose(before); // replaced by their concat with this step's keys and values
      }
      const v = logits.shape[1];
      let raw: Float32Array;
      let lp: Float32Array | undefined;
      try {
        raw = logits.dataSync() as Float32Array;
        lp = logp?.dataSync() as Float32Array | undefined;
      } finally {
        tf.dispose([logits, logp].filter((t): t is tf.Tensor2D => t !== undefined));
      }
      const next: Row[] = [];
      const parents: number[] = [];
      const follow = (item: Item, i: number, row: Float32Array) => {
        const g = item.gen!;
        const token = pickToken(row.subarray(0, vocab(v)), opts.temperature ?? 0, opts.topK ?? 0, g.rng);
        if (stop.has(token)) return;
        g.out.push(token);
        if (g.out.length < g.steps) (next.push({ gen: item }), parents.push(i));
      };
      rows.forEach((r, i) => {
        const k = slot[i];
        const row = k < 0 ? undefined : raw.subarray(k * v, (k + 1) * v);
        if ('gen' in r) return follow(r.gen, i, row!);
        for (const item of r.node.gens) follow(item, i, row!);
        if (r.node.scores.length > 0) {
          const l = lp!.subarray(k * v, (k + 1) * v);
          for (const { item, at } of r.node.scores) addScoredRow(item.score!.sum, l, item.score!.completion[at], at === 0);
        }
        for (const child of r.node.children.values()) (next.push({ node: child }), parents.push(i));
      });
      if (next.length === 0) break;
      if (next.length !== rows.length || parents.some((p, i) => p !== i)) {
        // all copies first: if one fails, the ones made are freed and the cache is still whole
        const copies: tf.Tensor4D[] = [];
        try {
          for (const x of owned()) copies.push(gatherRows(x, parents)); // (rows', nh, T, hs)
        } catch (err) {
          tf.dispose(copies);
          throw err;
        }
        const old = owned();
        const layers = cache.k.length;
        cache.k = copies.slice(0, layers);
        cache.v = copies.slice(layers);
        tf.dispose(old);
      }
      rows = next;
    }
  } finally {
    tf.dispose(owned());
  }
}

/**
 * Rows of x at `rows` (along the first axis), copied through JavaScript: tfjs-wasm's gather kernel
 * moves ~100 MB/s on these shapes (measured: 12.6 ms for 220 rows of [4, 12, 32]), a copy out, row
 * copies and a copy in take 2.5 ms. Exact copies either way.
 */
function gatherRows(x: tf.Tensor4D, rows: readonly number[]): tf.Tensor4D {
  const data = x.dataSync() as Float32Array;
  const width = x.size / x.shape[0];
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, i) => out.set(data.subarray(r * width, (r + 1) * width), i * width));
  return tf.tensor4d(out, [rows.length, x.shape[1], x.shape[2], x.shape[3]]);
}
