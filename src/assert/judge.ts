/**
 * A Judge over a real GPT: greedy generation with the KV cache (what a user sees), and one
 * teacher-forced forward per (prompt, completion) for prob, rank and EasyEdit's token accuracy
 * (an extra number beside the generation checks, never the check itself: see DESIGN §2).
 * Results are cached per judge: the same prompts are asked again and again across edits.
 */
import { EditError } from '../errors.js';
import { decodeTree, type Continuation } from '../model/decode.js';
import { generate, type Deltas, type GPT } from '../model/gpt2.js';
import type { GeneratePool } from '../model/pool.js';
import { scorePairs, type ScorePair, type Scored } from '../model/score.js';
import { sentenceStopIds, type Tokenizer } from '../model/tokenizer.js';
import { excerpt } from '../util/format.js';
import type { GenerationRequest, PrefetchJudge, ScoreRequest } from './prefetch.js';

export interface ModelJudgeOptions {
  model: GPT;
  tokenizer: Tokenizer;
  /** Weight changes added to the model's parameters (the edited model); none for the base model. */
  deltas?: Deltas;
  /** Worker threads holding the same model: prefetched generations and scores are split across them (the same results). */
  pool?: GeneratePool;
}

export class ModelJudge implements PrefetchJudge {
  readonly model: GPT;
  readonly tokenizer: Tokenizer;
  readonly deltas: Deltas | undefined;
  private readonly pool: GeneratePool | undefined;
  /** Greedy ids per prompt, with the token budget they were generated for. */
  private readonly generated = new Map<string, { ids: number[]; budget: number }>();
  private readonly scored = new Map<string, Scored>();

  constructor(opts: ModelJudgeOptions) {
    this.model = opts.model;
    this.tokenizer = opts.tokenizer;
    this.deltas = opts.deltas;
    this.pool = opts.pool;
  }

  generate(prompt: string, maxTokens: number): string {
    return this.tokenizer.decode(this.greedyIds(prompt, maxTokens));
  }

  prob(prompt: string, completion: string): number {
    return this.score(prompt, completion).prob;
  }

  rank(prompt: string, completion: string): number {
    return this.score(prompt, completion).rank;
  }

  tokenAccuracy(prompt: string, completion: string): number {
    return this.score(prompt, completion).tokenAccuracy;
  }

  countTokens(text: string): number {
    return this.tokenizer.encode(text).length;
  }

  /** Forget cached results (e.g. after the deltas' values changed in place). */
  clearCache(): void {
    this.generated.clear();
    this.scored.clear();
  }

  /**
   * Greedy continuation ids. Greedy decoding is deterministic, so a shorter budget is a prefix of a
   * longer one, and a run that stopped before its budget (newline, end of text, context) is complete.
   */
  greedyIds(prompt: string, maxTokens: number): number[] {
    const hit = this.cachedIds(prompt, maxTokens);
    if (hit !== undefined) return hit;
    const ids = this.promptIds(prompt);
    this.checkContext(prompt, ids.length, 0);
    const out = generate(this.model, ids, {
      maxNewTokens: maxTokens,
      stopIds: sentenceStopIds(this.tokenizer, this.model.config.vocabSize),
      deltas: this.deltas,
    });
    this.generated.set(prompt, { ids: out, budget: maxTokens });
    return out.slice();
  }

  cachedOutput(prompt: string, maxTokens: number): string | undefined {
    const ids = this.cachedIds(prompt, maxTokens);
    return ids === undefined ? undefined : this.tokenizer.decode(ids);
  }

  /**
   * Greedy ids of every generation request and teacher-forced numbers of every scored pair not
   * cached yet, in one decodeTree pass (each prompt once at its largest budget; the ids and numbers
   * each gets alone), split across the pool's threads when there is one. A prompt or pair the
   * judge would refuse (past the context, an empty completion) is left for generate() or score()
   * to report.
   */
  prefetch(requests: readonly GenerationRequest[], scores: readonly ScoreRequest[] = []): void {
    const budgets = new Map<string, number>();
    for (const r of requests) {
      if (this.cachedIds(r.prompt, r.maxTokens) === undefined) budgets.set(r.prompt, Math.max(r.maxTokens, budgets.get(r.prompt) ?? 0));
    }
    const gens: Array<{ key: string } & Continuation> = [...budgets].map(([key, budget]) => ({ key, budget, prompt: this.promptIds(key) })).filter((g) => g.prompt.length <= this.model.config.nPositions);
    const pairs: Array<{ key: string } & ScorePair> = [];
    const keys = new Set<string>();
    for (const r of scores) {
      const key = JSON.stringify([r.prompt, r.completion]);
      if (this.scored.has(key) || keys.has(key)) continue;
      let pair: ScorePair;
      try {
        pair = this.split(r.prompt, r.completion);
        this.checkContext(r.prompt, pair.prompt.length, pair.completion.length);
      } catch {
        continue;
      }
      keys.add(key);
      pairs.push({ key, ...pair });
    }
    if (gens.length === 0 && pairs.length === 0) return;
    const opts = { stopIds: sentenceStopIds(this.tokenizer, this.model.config.vocabSize), deltas: this.deltas };
    const out = this.pool !== undefined && this.pool.size > 1 ? this.pool.decode(this.model, gens, pairs, opts) : decodeTree(this.model, gens, pairs, opts);
    gens.forEach((g, i) => this.generated.set(g.key, { ids: out.ids[i], budget: g.budget }));
    pairs.forEach((p, i) => this.scored.set(p.key, out.scores[i]));
  }

  /** Cached ids for this budget: a shorter budget is a prefix of a longer one, and a run that stopped early is complete. */
  private cachedIds(prompt: string, maxTokens: number): number[] | undefined {
    const hit = this.generated.get(prompt);
    return hit !== undefined && (maxTokens <= hit.budget || hit.ids.length < hit.budget) ? hit.ids.slice(0, maxTokens) : undefined;
  }

  /** Prompt ids; an empty prompt starts from end-of-text, as documents do in training. */
  private promptIds(prompt: string): number[] {
    const ids = this.tokenizer.encode(prompt);
    if (ids.length === 0) ids.push(this.tokenizer.eosId);
    return ids;
  }

  /** A prompt (plus a scored completion, all but its last token fed) must fit the context: a user's mistake otherwise. */
  private checkContext(prompt: string, promptTokens: number, completionTokens: number): void {
    const context = this.model.config.nPositions;
    if (promptTokens + Math.max(0, completionTokens - 1) > context) {
      const extra = completionTokens > 0 ? ` (+${completionTokens} of completion)` : '';
      throw new EditError(`prompt ${excerpt(prompt)} is ${promptTokens} tokens${extra}; the model's context is ${context}`, {
        hint: '`edit validate` names the edit file and field',
      });
    }
  }

  /**
   * Prompt and completion ids for teacher forcing: the completion is what encode(prompt + completion)
   * adds after encode(prompt); when the joint encoding does not start with the prompt's (a merge across
   * the boundary), the completion is encoded on its own.
   */
  private split(prompt: string, completion: string): ScorePair {
    if (completion === '') throw new EditError(`empty completion after ${excerpt(prompt)}: nothing to score`);
    const p = this.tokenizer.encode(prompt);
    if (p.length > 0) {
      const joint = this.tokenizer.encode(prompt + completion);
      if (joint.length > p.length && p.every((id, i) => joint[i] === id)) return { prompt: p, completion: joint.slice(p.length) };
    }
    return { prompt: this.promptIds(prompt), completion: this.tokenizer.encode(completion) };
  }

  private score(prompt: string, completion: string): Scored {
    const key = JSON.stringify([prompt, completion]);
    const hit = this.scored.get(key);
    if (hit !== undefined) return hit;
    const pair = this.split(prompt, completion);
    this.checkContext(prompt, pair.prompt.length, pair.completion.length);
    const [result] = scorePairs(this.model, [pair], this.deltas);
    this.scored.set(key, result);
    return result;
  }

  cachedScore(prompt: string, completion: string): Scored | undefined {
    return this.scored.get(JSON.stringify([prompt, completion]));
  }
}
