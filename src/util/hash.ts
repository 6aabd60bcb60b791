import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';

/** The one hashing helper: hex sha256 of bytes or a string. */
export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of a file, read in chunks (a large file is never held whole). */
export async function sha256File(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    return await sha256Handle(fh);
  } finally {
    await fh.close();
  }
}

/** sha256 of a whole open file, read in chunks from its start (the handle stays open). */
export async function sha256Handle(fh: FileHandle): Promise<string> {
  const hash = createHash('sha256');
  const chunk = Buffer.alloc(1 << 24);
  for (let at = 0; ; ) {
    const { bytesRead } = await fh.read(chunk, 0, chunk.length, at);
    if (bytesRead === 0) break;
    hash.update(chunk.subarray(0, bytesRead));
    at += bytesRead;
  }
  return hash.digest('hex');
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
