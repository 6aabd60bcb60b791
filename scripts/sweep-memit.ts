/**
 * The calibration sweep behind the memit settings in models/default/model.json: N counterfactual
 * edits (distinct subjects, form-0 prompts the base model answers right, targets another object of
 * the relation) solved as one set; Rel / Gen (trained forms) / Held (held-out form) judged on greedy
 * output up to the newline, Loc on 200 known facts of unedited subjects (continuation unchanged).
 * Rows and the two parts of the key statistics are cached in .scratch/ so a sweep over the solve's
 * knobs recomputes only the solve.
 *
 *   npm run data && npx tsc -p tsconfig.json
 *   LAMBDA=30 PW=5 MU=1 node dist/scripts/sweep-memit.js 100     # the shipped settings
 *   knobs: LAMBDA (λ), PW (prompt weight in C), MU (preserveWeight), NPRES (preserved facts per
 *   relation), NP / RLR / RS (residual penalty, lr, steps), LAYERS (edited c_proj layers), FAILS=1
 */
import { readFileSync } from 'node:fs';
import { tf } from '../src/tensor/tf.js';
import { initBackend } from '../src/tensor/backend.js';
import { loadModelFolder } from '../src/model/folder.js';
import { generate, type Deltas } from '../src/model/gpt2.js';
import { MemitEditor, MEMIT_DEFAULTS } from '../src/editor/joint.js';
import { parseKeyStats } from '../src/editor/stats.js';
import { solveSet } from '../src/editor/set.js';
import { Rng } from '../src/util/random.js';
import type { EditRequest } from '../src/editor/editor.js';

interface Probe { prompt: string; answer: string; subject: string; relation: string; form: number; heldOut: boolean }

const N = Number(process.argv[2] ?? 100);
const LAMBDA = Number(process.env.LAMBDA ?? MEMIT_DEFAULTS.lambda);
await initBackend();
const loaded = await loadModelFolder('models/default');
const { model, tokenizer } = loaded;
const stats = parseKeyStats(readFileSync('models/default/stats.safetensors'), 'stats');
const probes = JSON.parse(readFileSync('data/probes.json', 'utf8')) as Probe[];
const rels = ['capital', 'currency', 'continent', 'language', 'country'];
const rng = new Rng(5);
const greedy = (prompt: string, n: number, deltas?: Deltas) => tokenizer.decode(generate(model, tokenizer.encode(prompt), { maxNewTokens: n, deltas })).split('\n')[0];
const holds = (out: string, target: string) => out.startsWith(target) && (out.length === target.length || /^[\s.,;:!?)]/.test(out.slice(target.length)));
// facts the base knows in form 0
const byKey = new Map<string, Probe[]>();
for (const p of probes) {
  if (!rels.includes(p.relation)) continue;
  const k = `${p.relation}|${p.subject}`;
  if (!byKey.has(k)) byKey.set(k, []);
  byKey.get(k)!.push(p);
}
const keys = rng.shuffle([...byKey.keys()]);
const objects = new Map<string, string[]>();
for (const p of probes) if (rels.includes(p.relation)) objects.set(p.relation, [...new Set([...(objects.get(p.relation) ?? []), p.answer])]);
const edits: Array<{ req: EditRequest; gen: string[]; held: string[] }> = [];
const used = new Set<string>();
const locality: Probe[] = [];
for (const k of keys) {
  const list = byKey.get(k)!;
  const [rel, subj] = k.split('|');
  const f0 = list.find((p) => p.form === 0 && !p.heldOut);
  if (f0 === undefined) continue;
  if (edits.length < N && !used.has(subj)) {
    if (!holds(greedy(f0.prompt, 6), f0.answer)) continue;
    const others = objects.get(rel)!.filter((o) => o !== f0.answer);
    const target = rng.pick(others);
    used.add(subj);
    const trained = list.filter((p) => !p.heldOut && p.form !== 0).slice(0, 3).map((p) => p.prompt);
    edits.push({ req: { id: `e${String(edits.length).padStart(4, '0')}`, task: 'counterfact', instruction: '', prompt: f0.prompt, target, rephrase: trained }, gen: trained, held: list.filter((p) => p.heldOut).map((p) => p.prompt) });
  } else if (edits.length >= N && locality.length < 200 && !used.has(subj)) {
    locality.push(f0);
  }
  if (edits.length >= N && locality.length >= 200) break;
}
import { existsSync, writeFileSync } from 'node:fs';
import { computeKeyStats } from '../src/editor/stats.js';
import type { EditRows } from '../src/editor/editor.js';
const editor = new MemitEditor({ ...MEMIT_DEFAULTS, lambda: LAMBDA, normPenalty: Number(process.env.NP ?? MEMIT_DEFAULTS.normPenalty), residualLr: Number(process.env.RLR ?? MEMIT_DEFAULTS.residualLr), residualSteps: Number(process.env.RS ?? MEMIT_DEFAULTS.residualSteps), ...(process.env.LAYERS ? { layers: process.env.LAYERS.split(',') } : {}), preserveWeight: Number(process.env.MU ?? 0) });
const editable = process.env.LAYERS ? [...new Set([...loaded.manifest.editableLayers, ...process.env.LAYERS.split(',')])] : loaded.manifest.editableLayers;
let statsUsed = stats;
if (process.env.PW !== undefined) {
  // C = C_text + PW·C_prompts, parts cached in .scratch
  const layers = editor.editedLayers(editable);
  const part = (name: string, texts: string[], prompts: string[]) => {
    const f = `.scratch/stats-${name}${process.env.LAYERS ? '-' + layers.length : ''}.json`;
    if (existsSync(f)) return JSON.parse(readFileSync(f, 'utf8')) as Record<string, number[]>;
    const st = computeKeyStats(model, tokenizer, layers, { texts, prompts, promptWeight: 1 });
    const o = Object.fromEntries(Object.entries(st.layers).map(([l, v]) => [l, Array.from(v.second)]));
    writeFileSync(f, JSON.stringify(o));
    return o;
  };
  const texts = readFileSync('data/corpus.txt', 'utf8').split('\n').filter((l) => l.length > 0).slice(0, 2500);
  const prompts = new Rng(11).shuffle(probes.filter((p) => !p.heldOut).map((p) => p.prompt)).slice(0, 3000);
  const ct = part('text', texts, []);
  const cp = part('prompts', [], prompts);
  const pw = Number(process.env.PW);
  statsUsed = { layers: Object.fromEntries(layers.map((l) => [l, { dim: 512, second: Float64Array.from(ct[l], (x, i) => x + pw * cp[l][i]) }])) };
}
// preserved prompts: form-0 prompts of known facts whose subjects are neither edited nor in the locality set
const locSubjects = new Set(locality.map((p) => p.subject));
const preserve: Array<{ prompt: string; object: string }> = [];
const perRel = new Map<string, number>();
for (const k of keys) {
  const [rel, subj] = k.split('|');
  if (used.has(subj) || locSubjects.has(subj) || (perRel.get(rel) ?? 0) >= Number(process.env.NPRES ?? 30)) continue;
  const f0 = byKey.get(k)!.find((p) => p.form === 0 && !p.heldOut);
  if (f0 === undefined) continue;
  preserve.push({ prompt: f0.prompt, object: f0.answer.trim() });
  perRel.set(rel, (perRel.get(rel) ?? 0) + 1);
}
const ctx = { model, tokenizer, layers: editable, stats: statsUsed, preserve };
const cacheFile = `.scratch/rows-${N}-${process.env.NP ?? ''}-${process.env.RLR ?? ''}-${process.env.RS ?? ''}${process.env.LAYERS ? '-L' + process.env.LAYERS.split(',').length : ''}.json`;
const cache = new Map<string, EditRows>();
if (existsSync(cacheFile)) {
  for (const [id, t] of Object.entries(JSON.parse(readFileSync(cacheFile, 'utf8')) as Record<string, Record<string, { dtype: 'F32' | 'I32'; shape: number[]; data: number[] }>>)) {
    cache.set(id, { tensors: Object.fromEntries(Object.entries(t).map(([k, v]) => [k, { ...v, data: v.dtype === 'I32' ? Int32Array.from(v.data) : Float32Array.from(v.data) }])) });
  }
}
const sol = await solveSet(ctx, editor, edits.map((e) => e.req), cache);
if (!existsSync(cacheFile)) writeFileSync(cacheFile, JSON.stringify(Object.fromEntries([...sol.rows].map(([id, r]) => [id, Object.fromEntries(Object.entries(r.tensors).map(([k, v]) => [k, { ...v, data: Array.from(v.data) }]))]))));
const deltas: Deltas = {};
for (const [p, t] of Object.entries(sol.delta.layers)) if (t.kind === 'dense') deltas[p] = tf.tensor(t.data, t.shape);
const base = locality.map((p) => greedy(p.prompt, 6));
let rel = 0, gen = 0, genN = 0, held = 0, heldN = 0, loc = 0;
for (const e of edits) {
  const n = tokenizer.encode(e.req.target).length + 2;
  if (holds(greedy(e.req.prompt, n, deltas), e.req.target)) rel++;
  for (const g of e.gen) { genN++; if (holds(greedy(g, n, deltas), e.req.target)) gen++; }
  for (const g of e.held) { heldN++; if (holds(greedy(g, n, deltas), e.req.target)) held++; }
}
const fails: string[] = [];
locality.forEach((p, i) => { const g = greedy(p.prompt, 6, deltas); if (g === base[i]) loc++; else fails.push(`${p.prompt} | ${JSON.stringify(g)} | base ${JSON.stringify(base[i])}`); });
if (process.env.FAILS) console.error(fails.join('\n'));
console.log(JSON.stringify({ N: edits.length, lambda: LAMBDA, pw: process.env.PW, mu: process.env.MU, layers: process.env.LAYERS, np: process.env.NP, rlr: process.env.RLR, rs: process.env.RS, rel: rel / edits.length, gen: gen / genN, held: heldN ? held / heldN : null, loc: loc / locality.length, rowsSeconds: sol.rowsSeconds, solveSeconds: sol.solveSeconds, capacity: sol.capacity }));
if (process.env.DEBUG) {
  for (const [p, t] of Object.entries(sol.delta.layers)) if (t.kind === 'dense') console.log(p, Math.sqrt(t.data.reduce((s, x) => s + x * x, 0)));
  locality.slice(0, 5).forEach((p, i) => console.log(p.prompt, '|', JSON.stringify(greedy(p.prompt, 6, deltas)), '| base', JSON.stringify(base[i])));
  edits.slice(0, 5).forEach((e) => console.log(e.req.prompt, e.req.target, '|', JSON.stringify(greedy(e.req.prompt, 6, deltas))));
}
