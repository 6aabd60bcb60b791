/**
 * Test hooks at named points of `edit apply`, for the interrupt and fault-injection tests:
 * EDITOPS_TEST_PAUSE=<point> prints `paused at <point>` and waits for a signal (awaited points only);
 * EDITOPS_TEST_KILL=<point> makes the process SIGKILL itself there (no handler, no cleanup: a crash).
 * A point fires the first time it is reached. Unset, a point costs one environment lookup.
 */
import { kill } from 'node:process';

/** Every point, in the order an apply reaches them, and where it is. */
export const TEST_POINTS = {
  'apply:planned': 'the plan is made, before the lock is taken',
  'lock:temp-written': 'the lock file is written to its temp name, before it is linked into place',
  'apply:locked': 'under the lock, before any work',
  'apply:rows': 'computing rows: after the first edit of the set',
  'apply:solved': 'the set is solved, before any assertion runs',
  'apply:verifying': 'verifying: after the first edit\'s checks',
  'apply:verified': 'every assertion passed, before anything is encoded',
  'write:temp-written': 'an atomic write: the temp file is written and synced, before the rename (first write: a rows file)',
  'write:renamed': 'an atomic write: renamed, before the folder is synced (first write: a rows file)',
  'apply:between-writes': 'after the first rows/delta file is written, before the next',
  'apply:files-written': 'every rows and delta file written, before state.json',
  'state:temp-written': 'state.json written to its temp name, before the rename',
  'state:renamed': 'state.json renamed into place, before the folder is synced',
  'apply:state-written': 'state.json written, before stray files are removed',
  'apply:removing-strays': 'stray-file cleanup: after the first stray file is removed',
  'apply:strays-removed': 'stray files removed, before apply returns to the command',
  'apply:written': 'the command has the result, before stale temp files are removed',
  'apply:temp-cleaned': 'stale temp files removed, before the commit',
  'git:staged': 'the commit\'s paths are staged (git add), before git commit',
  'git:in-commit': 'inside git commit: fired by a pre-commit hook the test installs, which kills the editops process',
  'git:committed': 'git commit is done, before the lock is released',
  'lock:releasing': 'the apply is over, before the lock file is removed',
} as const;

export type TestPoint = keyof typeof TEST_POINTS;

/** SIGKILL this process if EDITOPS_TEST_KILL names `point`. */
export function testKill(point: TestPoint): void {
  if (process.env.EDITOPS_TEST_KILL !== point) return;
  kill(process.pid, 'SIGKILL');
  // SIGKILL to oneself lands before the next instruction in practice; never go on if it did not.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
}

/** testKill, then wait for a signal if EDITOPS_TEST_PAUSE names `point` (after writing `paused at <point>` with `say`). */
export async function testPoint(point: TestPoint, say: (text: string) => void = (t) => void process.stderr.write(`${t}\n`)): Promise<void> {
  testKill(point);
  if (process.env.EDITOPS_TEST_PAUSE !== point) return;
  say(`paused at ${point}`);
  await new Promise<never>(() => setInterval(() => undefined, 1000));
}
