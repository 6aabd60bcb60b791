/**
 * The compiled script of a worker thread: beside the calling module in dist/, or under dist/ when
 * that module runs from src/ (tests run the TypeScript; workers always run the build).
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InternalError } from '../errors.js';
import { packageRoot } from './package-root.js';

/** `script` (e.g. "pool-worker.js") in the calling module's folder; `what` names it in the error when it is not built. */
export function workerScript(moduleUrl: string, script: string, what: string): string {
  const here = fileURLToPath(moduleUrl);
  const sibling = join(dirname(here), script);
  if (!here.endsWith('.ts') && existsSync(sibling)) return sibling;
  const root = packageRoot();
  const dir = relative(root, dirname(here)).replace(/^dist[\\/]/, '');
  const built = join(root, 'dist', dir, basename(script));
  if (!existsSync(built)) throw new InternalError(`the ${what} ${built} is not built (npm run build)`);
  return built;
}
