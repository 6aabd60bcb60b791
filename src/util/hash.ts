import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/** The one hashing helper: hex sha256 of bytes or a string. */
export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  return sha256(await readFile(path));
}
