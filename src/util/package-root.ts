import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InternalError } from '../errors.js';

let root: string | undefined;

/**
 * The editops package folder (schemas/, models/default, the workflow template). Tests run modules
 * from src/, the CLI from dist/src/, so walk up to the package.json named "editops".
 */
export function packageRoot(): string {
  if (root === undefined) {
    let dir = dirname(fileURLToPath(import.meta.url));
    for (;;) {
      const pkg = join(dir, 'package.json');
      if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'editops') break;
      const up = dirname(dir);
      if (up === dir) throw new InternalError(`cannot find the editops package root above ${fileURLToPath(import.meta.url)}`);
      dir = up;
    }
    root = dir;
  }
  return root;
}
