import { readFile } from 'node:fs/promises';
import { EditError } from '../errors.js';

/** A JSON file, or an EditError naming it: `missing` when there is no such file, why when it cannot be read, the parser's words when it is not JSON. */
export async function readJsonFile(path: string, missing: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new EditError(code === 'ENOENT' ? missing : `cannot read it: ${code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`, { file: path });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new EditError(`not valid JSON: ${(err as Error).message}`, { file: path });
  }
}
