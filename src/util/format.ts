/** A 0..1 fraction as a whole percentage ("83%"); "–" for a metric that does not apply (null). */
export function pct(x: number | null): string {
  return x === null ? '–' : `${Math.round(x * 100)}%`;
}

/** Longest user text a message shows (prompts, targets, values, arguments); the rest becomes "…". */
export const EXCERPT_CHARS = 80;

/** The first `max` characters of `text`, with "…" when there were more (never splitting a surrogate pair). */
export function cut(text: string, max = EXCERPT_CHARS): string {
  if (text.length <= max) return text;
  const head = text.slice(0, max);
  return `${/[\uD800-\uDBFF]$/.test(head) ? head.slice(0, -1) : head}…`;
}

/**
 * User text in a message: JSON-quoted (leading spaces and newlines visible), cut to `max` characters
 * with "…" and the full length when longer, so a 400 KB prompt cannot flood a terminal or CI log.
 */
export function excerpt(text: string, max = EXCERPT_CHARS): string {
  return text.length <= max ? JSON.stringify(text) : `${JSON.stringify(cut(text, max))} (${text.length} characters)`;
}

/** Ids for a message: all of them when few, else the first `shown` and how many more ("a, b, c, d, e and 7 more"). */
export function idList(ids: readonly string[], shown = 5): string {
  return ids.length > shown ? `${ids.slice(0, shown).join(', ')} and ${ids.length - shown} more` : ids.join(', ');
}

/** One argument of a recorded command as a POSIX shell reads it: bare when safe, else single-quoted ("--relation 'calling code'"). */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./,=:@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
