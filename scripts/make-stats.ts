/**
 * Key statistics of a model folder's joint-editor layers (src/editor/stats.ts), from the fact corpus:
 * corpus tokens (the first TEXTS sentences of data/corpus.txt) + PROMPT_WEIGHT × the last tokens of
 * PROMPTS trained-form fact prompts (data/probes.json). Writes <model>/stats.safetensors and names it
 * (with its sha256 and source) in model.json.
 *
 *   npm run data && npm run stats [-- models/default [data]]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../src/tensor/backend.js';
import { loadModelFolder } from '../src/model/folder.js';
import { computeKeyStats, saveKeyStats } from '../src/editor/stats.js';
import { editedLayers, editorSettings } from '../src/editor/settings.js';
import { Rng } from '../src/util/random.js';

const TEXTS = 2500; // ≈ 30k tokens
const PROMPTS = 3000;
const PROMPT_WEIGHT = 5;
const SEED = 11;

async function main(): Promise<void> {
  const dir = process.argv[2] ?? 'models/default';
  const data = process.argv[3] ?? 'data';
  const backend = await initBackend();
  const loaded = await loadModelFolder(dir);
  const layers = editedLayers(editorSettings(loaded.manifest, 'memit'), loaded.manifest.editableLayers);
  const texts = readFileSync(join(data, 'corpus.txt'), 'utf8').split('\n').filter((l) => l.length > 0).slice(0, TEXTS);
  const probes = JSON.parse(readFileSync(join(data, 'probes.json'), 'utf8')) as Array<{ prompt: string; heldOut: boolean }>;
  const prompts = new Rng(SEED).shuffle(probes.filter((p) => !p.heldOut).map((p) => p.prompt)).slice(0, PROMPTS);
  const t0 = Date.now();
  const stats = computeKeyStats(loaded.model, loaded.tokenizer, layers, { texts, prompts, promptWeight: PROMPT_WEIGHT }, (d, t) => {
    if (d % 640 === 0 || d === t) console.error(`${d}/${t}`);
  });
  await saveKeyStats(dir, stats, { texts: texts.length, prompts: prompts.length, promptWeight: PROMPT_WEIGHT }, { command: 'npm run data && npm run stats', corpusSentences: texts.length, factPrompts: prompts.length, promptWeight: PROMPT_WEIGHT, seed: SEED });
  console.log(`${backend}: key statistics of ${layers.join(', ')} from ${texts.length} sentences + ${prompts.length} fact prompts ×${PROMPT_WEIGHT} in ${((Date.now() - t0) / 1000).toFixed(1)} s → ${join(dir, 'stats.safetensors')}`);
}

await main();
