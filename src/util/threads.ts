/**
 * Thread counts from a setting (--workers, EDIT_WORKERS, TRAIN_WORKERS): parsing only, no tfjs, so a
 * command can refuse a bad value before it loads anything.
 */
import { availableParallelism } from 'node:os';
import { EditError } from '../errors.js';

/**
 * Threads from --workers or EDIT_WORKERS: a whole number ≥ 1, or "auto" for every core.
 * Unset: 1 here; judging commands size an unset count by their work (judgeThreads).
 */
export function workerCount(setting: string | undefined, source = 'EDIT_WORKERS'): number {
  if (setting === undefined || setting.trim() === '') return 1;
  if (setting.trim() === 'auto') return Math.max(1, availableParallelism());
  const n = Number(setting);
  if (!Number.isInteger(n) || n < 1) throw new EditError(`${source}=${setting} is not a whole number ≥ 1 or "auto"`);
  return n;
}

