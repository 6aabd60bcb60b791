import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/** The one hashing helper: hex sha256 of bytes or a string. */
export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  return sha256(await readFile(path));
}

/** sha256 of a file, or null when it does not exist (other read errors are thrown). */
export async function sha256FileIfExists(path: string): Promise<string | null> {
  try {
    return await sha256File(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
