/**
 * Hugging Face GPT-2 folders (config.json, model.safetensors, tokenizer.json) in and out.
 * Import writes a model folder with our manifest and F32 weights under our names; export writes
 * a folder that Hugging Face transformers loads with GPT2LMHeadModel.from_pretrained.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EditError } from '../errors.js';
import { sha256 } from '../util/hash.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { Params } from './gpt2.js';
import { MANIFEST, type ModelManifest, type Thresholds } from './folder.js';
import { openSafetensors, serializeSafetensors, writeSafetensorsStreaming } from './safetensors.js';
import { Tokenizer } from './tokenizer.js';
import { checkpointFromParams, checkpointPlan, checkTied, configFromHf, configToHf } from './weights.js';

export const DEFAULT_THRESHOLDS: Thresholds = { reliability: 1, generalization: 0.5, locality: 0.8, portability: 0 };

async function readIn(dir: string, name: string): Promise<Uint8Array> {
  try {
    return await readFile(join(dir, name));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new EditError(code === 'ENOENT' ? `${name} is missing: a Hugging Face GPT-2 folder has config.json, model.safetensors and tokenizer.json` : `cannot read: ${code}`, { file: join(dir, name) });
  }
}

function parseJson(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new EditError(`not valid JSON: ${(err as Error).message}`, { file });
  }
}

/** The MLP matrices of the last two blocks: where MEND-family editors edit. */
export function defaultEditableLayers(nLayer: number): string[] {
  const out: string[] = [];
  for (let i = Math.max(0, nLayer - 2); i < nLayer; i++) out.push(`h.${i}.mlp.c_fc`, `h.${i}.mlp.c_proj`);
  return out;
}

export async function importHfFolder(src: string, dest: string, name: string): Promise<ModelManifest> {
  try {
    if ((await stat(src)).isDirectory() === false) throw new Error();
  } catch {
    throw new EditError('not a folder', { file: src });
  }
  const config = configFromHf(parseJson(await readIn(src, 'config.json'), join(src, 'config.json')), join(src, 'config.json'));
  const tokBytes = await readIn(src, 'tokenizer.json');
  const tokenizer = Tokenizer.fromJson(parseJson(tokBytes, join(src, 'tokenizer.json')), join(src, 'tokenizer.json'));
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new EditError(`tokenizer has ${tokenizer.vocabSize} tokens, more than vocab_size ${config.vocabSize}`, { file: join(src, 'config.json'), pointer: '/vocab_size' });
  }
  const wFile = join(src, 'model.safetensors');
  // Tensor by tensor: every name, dtype and shape is checked from the header before anything is
  // written, then each tensor is read, converted to F32 and written, so the import holds one
  // tensor at a time (two for a tied lm_head's check), never the whole weights (no tfjs tensors either).
  const reader = await openSafetensors(wFile);
  let weightsSha: string;
  try {
    const plan = checkpointPlan(reader.entries, config, wFile);
    const source = new Map(plan.params.map((p) => [p.name, p.source]));
    const read = async (raw: string) => (await reader.read(raw)).data as Float32Array;
    if (plan.lmHead !== undefined) checkTied(await read(plan.lmHead), await read(source.get('wte.weight')!), wFile);
    await mkdir(dest, { recursive: true });
    await writeFileAtomic(join(dest, 'tokenizer.json'), tokBytes);
    weightsSha = await writeSafetensorsStreaming(join(dest, 'base.safetensors'), plan.params, (name) => read(source.get(name)!), { format: 'pt' });
  } finally {
    await reader.close();
  }
  const manifest: ModelManifest = {
    version: 1,
    name,
    architecture: 'gpt2',
    config,
    tokenizer: { file: 'tokenizer.json', sha256: sha256(tokBytes) },
    weights: { file: 'base.safetensors', sha256: weightsSha, dtype: 'F32' },
    editableLayers: defaultEditableLayers(config.nLayer),
    editor: null,
    thresholds: DEFAULT_THRESHOLDS,
    provenance: { importedFrom: 'Hugging Face GPT-2 folder', configSha256: sha256(await readIn(src, 'config.json')) },
  };
  await writeFileAtomic(join(dest, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

/** Write effective weights as a Hugging Face GPT-2 folder. */
export async function exportHfFolder(params: Params, manifest: ModelManifest, tokenizerBytes: Uint8Array, eosId: number, out: string): Promise<void> {
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'config.json'), JSON.stringify(configToHf(manifest.config, eosId), null, 2) + '\n');
  await writeFileAtomic(join(out, 'model.safetensors'), serializeSafetensors(await checkpointFromParams(params), { format: 'pt' }));
  await writeFileAtomic(join(out, 'tokenizer.json'), tokenizerBytes);
}
