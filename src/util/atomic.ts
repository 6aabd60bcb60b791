import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, basename, join } from 'node:path';
import { processExists } from './process.js';
import { testKill } from './test-hooks.js';

/** `.<name>.tmp-<pid>-<hex>`: writeFileAtomic's temp file, left behind when its writer was killed before the rename. */
const TEMP_FILE = /^\..+\.tmp-(\d+)-[0-9a-f]+$/;

/** Whether a file name (or path) is an atomic write's temp file. */
export function isTempFile(path: string): boolean {
  return TEMP_FILE.test(basename(path));
}

/**
 * The one atomic-write helper: a temp file in the same folder (`.<name>.tmp-<pid>-<hex>`, which
 * drift checks ignore), fsync, rename over the target, then fsync the folder (best effort). `data`
 * may be a function that writes the open temp file itself, for files too large to hold whole.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string | ((fh: FileHandle) => Promise<void>)): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx');
    try {
      if (typeof data === 'function') await data(fh); // a writer of its own (a file written piece by piece)
      else await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    testKill(isState(path) ? 'state:temp-written' : 'write:temp-written');
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  testKill(isState(path) ? 'state:renamed' : 'write:renamed');
  await syncDirectory(dirname(path));
}

const isState = (path: string) => basename(path) === 'state.json';

async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // best effort: not every platform can fsync a directory
  }
}

/**
 * Remove the temp files in `dir` (and its subfolders with `recursive`) whose writer process is gone:
 * only a pid this host knows to be dead (ESRCH), never our own. Call it under the model lock, so no
 * editops writer on another host can own them. Returns the removed paths.
 */
export async function removeStaleTempFiles(dir: string, opts: { recursive?: boolean } = {}): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (opts.recursive === true) removed.push(...(await removeStaleTempFiles(path, opts)));
      continue;
    }
    const m = TEMP_FILE.exec(e.name);
    if (m === null || !e.isFile() || !pidIsDead(Number(m[1]))) continue;
    try {
      await unlink(path);
      removed.push(path);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}

function pidIsDead(pid: number): boolean {
  return Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && !processExists(pid);
}
