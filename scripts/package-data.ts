/** Data files of installed npm packages, for the data scripts (make-data, make-bench). */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** A JSON data file inside an installed package (their `exports` maps hide the JSON files from require). */
export function readPackageJson(pkg: string, file: string): unknown {
  let dir = dirname(require.resolve(pkg));
  while (!existsSync(join(dir, 'package.json')) || JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== pkg) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the folder of package ${pkg}`);
    dir = up;
  }
  return JSON.parse(readFileSync(join(dir, file), 'utf8'));
}
