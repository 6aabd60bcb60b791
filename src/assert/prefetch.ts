/**
 * Batched generation for checks, with each check's result unchanged. The checks first run against
 * stand-in judges that record which prompts they generate for and with what budget (answering from
 * the real judge's cache, or '' when it has nothing yet); the real judges then generate all of those
 * in batches (ModelJudge.prefetch → generateBatch). Requests that depend on an output (starts-with's
 * boundary tokens, plan's edited check after the base check) show up in the next round, once that
 * output is cached. When a round asks for nothing new, the real checks run and find every
 * generation cached: greedy decoding is deterministic and a shorter budget is a prefix of a longer
 * one, so they see exactly what one-at-a-time judging shows.
 */
import type { Judge } from './types.js';

export interface GenerationRequest {
  prompt: string;
  maxTokens: number;
}

/** A Judge that can say what it has cached and fill its cache for many prompts at once (ModelJudge). */
export interface PrefetchJudge extends Judge {
  /** What generate(prompt, maxTokens) returns from the cache, or undefined when it would run the model. */
  cachedOutput(prompt: string, maxTokens: number): string | undefined;
  /** Generates the requests not cached yet, batched; prompts the model cannot take are left for generate to report. */
  prefetch(requests: readonly GenerationRequest[]): void;
}

export function canPrefetch(judge: Judge): judge is PrefetchJudge {
  const j = judge as Partial<PrefetchJudge>;
  return typeof j.prefetch === 'function' && typeof j.cachedOutput === 'function';
}

/** Recording rounds at most: each round follows one more output-dependent request (two suffice for checks, three for plan). */
const MAX_ROUNDS = 6;

/**
 * Fills the judges' generation caches with what `run` will ask of them. `run` gets one stand-in per
 * judge, in the same order (the same stand-in where the same judge is passed twice), and must ask
 * what the real run will ask; what it returns is ignored. Unless every judge can prefetch, nothing
 * happens (a stand-in for a judge that cannot would do the work twice). A run that throws stops the
 * prefetch: the real run meets the same error where it belongs.
 */
export function prefetchGenerations(judges: Judge[], run: (...standIns: Judge[]) => void): void {
  if (!judges.every(canPrefetch)) return;
  const real = [...new Set(judges as PrefetchJudge[])];
  const asked = new Map(real.map((j) => [j, new Set<string>()]));
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const wanted = new Map(real.map((j) => [j, [] as GenerationRequest[]]));
    const standIns = new Map(real.map((j) => [j, recorder(j, wanted.get(j)!)]));
    try {
      run(...(judges as PrefetchJudge[]).map((j) => standIns.get(j)!));
    } catch {
      return;
    }
    let added = 0;
    for (const j of real) {
      const seen = asked.get(j)!;
      const fresh = wanted.get(j)!.filter((r) => !seen.has(key(r)));
      for (const r of fresh) seen.add(key(r));
      added += fresh.length;
      if (fresh.length > 0) j.prefetch(fresh);
    }
    if (added === 0) return;
  }
}

function key(r: GenerationRequest): string {
  return `${r.maxTokens}\u0000${r.prompt}`;
}

/** A judge that answers generation from `judge`'s cache and notes what it misses; teacher-forced numbers are placeholders. */
function recorder(judge: PrefetchJudge, wanted: GenerationRequest[]): Judge {
  return {
    generate(prompt, maxTokens) {
      const hit = judge.cachedOutput(prompt, maxTokens);
      if (hit !== undefined) return hit;
      wanted.push({ prompt, maxTokens });
      return '';
    },
    prob: () => 0,
    rank: () => 1,
    tokenAccuracy: () => 0,
    countTokens: (text) => judge.countTokens?.(text) ?? new TextEncoder().encode(text).length,
  };
}
