/**
 * Batched judging, with each check's result unchanged. The checks first run against stand-in
 * judges that record what they ask: which prompts they generate for and with what budget, which
 * (prompt, completion) pairs they score by teacher forcing (answering from the real judge's caches,
 * or '' and placeholder numbers when it has nothing yet); the real judges then compute all of that
 * in one batched pass (ModelJudge.prefetch → decodeTree, which shares the prompts' prefixes). Requests that depend
 * on an output (starts-with's boundary tokens, plan's edited check after the base check) show up in
 * the next round, once that output is cached. When a round asks for nothing new, the real checks run
 * and find everything cached: greedy decoding is deterministic, a shorter budget is a prefix of a
 * longer one, and batched rows compute the bits they compute alone, so they see exactly what
 * one-at-a-time judging shows.
 */
import type { Judge } from './types.js';

export interface GenerationRequest {
  prompt: string;
  maxTokens: number;
}

export interface ScoreRequest {
  prompt: string;
  completion: string;
}

/** A Judge that can say what it has cached and fill its caches for many prompts at once (ModelJudge). */
export interface PrefetchJudge extends Judge {
  /** What generate(prompt, maxTokens) returns from the cache, or undefined when it would run the model. */
  cachedOutput(prompt: string, maxTokens: number): string | undefined;
  /**
   * Generates the requests and scores the pairs not cached yet, batched together; prompts and pairs
   * the judge would refuse are left for generate and score to report.
   */
  prefetch(requests: readonly GenerationRequest[], scores?: readonly ScoreRequest[]): void;
  /** prob, rank and tokenAccuracy of the pair from the cache, or undefined when they would run the model. */
  cachedScore(prompt: string, completion: string): { prob: number; rank: number; tokenAccuracy: number } | undefined;
}

export function canPrefetch(judge: Judge): judge is PrefetchJudge {
  const j = judge as Partial<PrefetchJudge>;
  return typeof j.prefetch === 'function' && typeof j.cachedOutput === 'function' && typeof j.cachedScore === 'function';
}

/** Recording rounds at most: each round follows one more output-dependent request (two suffice for checks, three for plan). */
const MAX_ROUNDS = 6;

/**
 * Fills the judges' caches with what `run` will ask of them. `run` gets one stand-in per
 * judge, in the same order (the same stand-in where the same judge is passed twice), and must ask
 * what the real run will ask; what it returns is ignored. Unless every judge can prefetch, nothing
 * happens (a stand-in for a judge that cannot would do the work twice). A run that throws stops the
 * prefetch: the real run meets the same error where it belongs.
 */
export function prefetchJudgements(judges: Judge[], run: (...standIns: Judge[]) => void): void {
  if (!judges.every(canPrefetch)) return;
  const real = [...new Set(judges as PrefetchJudge[])];
  const asked = new Map(real.map((j) => [j, new Set<string>()]));
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const wanted = new Map(real.map((j) => [j, { generate: [] as GenerationRequest[], score: [] as ScoreRequest[] }]));
    const standIns = new Map(real.map((j) => [j, recorder(j, wanted.get(j)!)]));
    try {
      run(...(judges as PrefetchJudge[]).map((j) => standIns.get(j)!));
    } catch {
      return;
    }
    let added = 0;
    for (const j of real) {
      const seen = asked.get(j)!;
      const fresh = <T>(rs: T[], key: (r: T) => string): T[] => {
        const out: T[] = [];
        for (const r of rs) {
          const k = key(r);
          if (!seen.has(k)) out.push(r);
          seen.add(k);
        }
        return out;
      };
      const gen = fresh(wanted.get(j)!.generate, (r) => `g\u0000${r.maxTokens}\u0000${r.prompt}`);
      const score = fresh(wanted.get(j)!.score, (r) => `s\u0000${JSON.stringify([r.prompt, r.completion])}`);
      added += gen.length + score.length;
      if (gen.length > 0 || score.length > 0) j.prefetch(gen, score);
    }
    if (added === 0) return;
  }
}

/** A judge that answers from `judge`'s caches and notes what it misses ('' and placeholder numbers meanwhile). */
function recorder(judge: PrefetchJudge, wanted: { generate: GenerationRequest[]; score: ScoreRequest[] }): Judge {
  const scored = (prompt: string, completion: string) => {
    const hit = judge.cachedScore(prompt, completion);
    if (hit === undefined) wanted.score.push({ prompt, completion });
    return hit;
  };
  return {
    generate(prompt, maxTokens) {
      const hit = judge.cachedOutput(prompt, maxTokens);
      if (hit !== undefined) return hit;
      wanted.generate.push({ prompt, maxTokens });
      return '';
    },
    prob: (p, c) => scored(p, c)?.prob ?? 0,
    rank: (p, c) => scored(p, c)?.rank ?? 1,
    tokenAccuracy: (p, c) => scored(p, c)?.tokenAccuracy ?? 0,
    countTokens: (text) => judge.countTokens?.(text) ?? new TextEncoder().encode(text).length,
  };
}
