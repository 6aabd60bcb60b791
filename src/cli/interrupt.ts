/**
 * Ctrl-C (SIGINT) and SIGTERM while a command runs: one line saying what was kept, then exit
 * 128 + the signal's number (130, 143) instead of dying silently. The lock's own handler
 * (state/lock.ts), called in the same signal emit, releases the lock; the exit waits for the next
 * tick so that it runs after it.
 */
import type { Io } from './command.js';
import { testPoint, type TestPoint } from '../util/test-hooks.js';

const EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

let report: (() => string) | undefined;

/** What the running command has kept so far, asked for when it is interrupted. */
export function reportOnInterrupt(fn: () => string): void {
  report = fn;
}

/** Catch SIGINT/SIGTERM until the returned function is called (main wraps every command in it). */
export function handleInterrupts(io: Io): () => void {
  let fired = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (fired) return; // the lock handler raises the signal again
    fired = true;
    process.nextTick(() => {
      let kept: string;
      try {
        kept = report?.() ?? 'stopped';
      } catch (err) {
        kept = `stopped (could not tell what was kept: ${(err as Error).message})`;
      }
      io.err(`\ninterrupted (${signal}): ${kept}`);
      process.exit(EXIT[signal] ?? 1);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    report = undefined;
  };
}

/**
 * A test hook (util/test-hooks.ts): with EDITOPS_TEST_PAUSE=<point> the command prints
 * `paused at <point>` and waits there for a signal; with EDITOPS_TEST_KILL=<point> it SIGKILLs itself.
 */
export async function testPause(point: TestPoint, io: Io): Promise<void> {
  await testPoint(point, (t) => io.err(t));
}
