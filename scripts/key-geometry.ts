/**
 * How far the joint solve's keys tell subjects apart: per counterfact relation of data/bench.json,
 * the cosine, in the solve's metric (λC)⁻¹, between an edit prompt's key (the edited layer's input at
 * the last prompt token) and the keys of
 * - the same fact in its three trained rephrasings (high: an edit carries over to them),
 * - the same form for another subject with the same object (low: an edit stays on its subject),
 * - the same form for a subject with another object.
 * For cities it also prints the response ratio k'ᵀC⁻¹k / kᵀC⁻¹k (what one edit row's change gives a
 * rephrasing, against its own prompt), for cities of China and the rest. The measure behind the
 * docs/measurements.md, "Why provinces (v3)".
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/key-geometry.js [models/default]   # LAYER=h.3.mlp.c_proj, PER=120
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../src/tensor/tf.js';
import { initBackend } from '../src/tensor/backend.js';
import { loadModelFolder } from '../src/model/folder.js';
import { parseKeyStats } from '../src/editor/stats.js';
import { solveRidged } from '../src/editor/joint.js';
import { MEMIT_DEFAULTS } from '../src/editor/settings.js';

interface BenchRecord { task: string; relation: string; subject: string; original: string; prompt: string; rephrase: string[] }

const DIR = process.argv[2] ?? 'models/default';
const LAYER = process.env.LAYER ?? 'h.2.mlp.c_proj';
const PER = Number(process.env.PER ?? 120);
const FORMS = 4; // the prompt and three rephrasings

const backend = await initBackend();
const { model, tokenizer } = await loadModelFolder(DIR);
const stats = parseKeyStats(readFileSync(join(DIR, 'stats.safetensors')), 'stats');
const bench = JSON.parse(readFileSync('data/bench.json', 'utf8')) as { records: BenchRecord[] };
const weight = model.params[`${LAYER}.weight`];
const [keyDim, outDim] = weight.shape as [number, number];

/** The edited layer's input at the prompt's last token. */
function keyOf(prompt: string): Float32Array {
  const ids = tokenizer.encode(prompt);
  return tf.tidy(() => {
    const captured: Record<string, tf.Tensor2D> = {};
    model.hidden(tf.tensor2d([ids], [1, ids.length], 'int32'), { probes: { [LAYER]: tf.zeros([ids.length, outDim]) as tf.Tensor2D }, captured });
    return captured[LAYER].slice([ids.length - 1, 0], [1, keyDim]).dataSync() as Float32Array;
  }).slice();
}

const byRelation = new Map<string, BenchRecord[]>();
for (const r of bench.records) if (r.task === 'counterfact' && r.rephrase.length >= FORMS - 1) byRelation.set(r.relation, [...(byRelation.get(r.relation) ?? []), r]);
const prior = Float64Array.from(stats.layers[LAYER].second, (v) => v * MEMIT_DEFAULTS.lambda);
console.log(`${backend}: ${DIR}, keys of ${LAYER} at the last prompt token, metric (λC)⁻¹ with λ = ${MEMIT_DEFAULTS.lambda}`);
for (const [relation, all] of byRelation) {
  const list = all.slice(0, PER);
  const keys = list.flatMap((r) => [r.prompt, ...r.rephrase.slice(0, FORMS - 1)].map(keyOf));
  const m = keys.length;
  const b = new Float64Array(keyDim * m);
  keys.forEach((k, j) => k.forEach((v, i) => (b[i * m + j] = v)));
  const z = solveRidged(prior, b, keyDim, m);
  const dot = (a: number, c: number) => keys[a].reduce((s, v, i) => s + v * z[i * m + c], 0);
  const self = keys.map((_, a) => dot(a, a));
  const cos = (a: number, c: number) => dot(a, c) / Math.sqrt(self[a] * self[c]);
  const mean = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((s, v) => s + v, 0) / xs.length);
  const rephrased: number[] = [];
  const sameObject: number[] = [];
  const otherObject: number[] = [];
  list.forEach((r, x) => {
    for (let f = 1; f < FORMS; f++) rephrased.push(cos(x * FORMS, x * FORMS + f));
    for (let y = x + 1; y < list.length; y++) (r.original === list[y].original ? sameObject : otherObject).push(cos(x * FORMS, y * FORMS));
  });
  console.log(`${relation.padEnd(14)} ${String(list.length).padStart(3)} subjects  cosine to its rephrasings ${mean(rephrased).toFixed(3)}  to another subject, same object ${mean(sameObject).toFixed(3)} (${sameObject.length} pairs), other object ${mean(otherObject).toFixed(3)}`);
  if (relation === 'country') {
    const ratio = (x: number) => mean([1, 2, 3].map((f) => dot(x * FORMS, x * FORMS + f) / self[x * FORMS]));
    const china = list.map((r, x) => [r, x] as const).filter(([r]) => r.original === ' China').map(([, x]) => ratio(x));
    const rest = list.map((r, x) => [r, x] as const).filter(([r]) => r.original !== ' China').map(([, x]) => ratio(x));
    console.log(`${''.padEnd(14)} response on the rephrasings / on the prompt: cities of China ${mean(china).toFixed(3)} (${china.length}), others ${mean(rest).toFixed(3)} (${rest.length})`);
  }
}
