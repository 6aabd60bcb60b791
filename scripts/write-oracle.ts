/**
 * An upper bound for edits that always fire: per benchmark record, one shift δ of the residual stream
 * entering block LAYER, at one position, found by Adam on the target's NLL after the edit prompt; then
 * the same δ added at the same position of each rephrasing (as if the edit fired on every phrasing)
 * and checked there. It separates the two reasons a rephrasing can miss: a value that is not enough
 * (then this bound misses too) or a weight change that does not fire on the rephrasing's key (then the
 * bound holds where the edit does not). AT=last writes at the last prompt token (where the joint
 * editors' keys are), AT=subject at the subject's last token (ROME/MEMIT's position).
 * A single position carries the whole change here, so a target of several tokens is harder than it
 * is for a weight edit, which acts at every position: compare the rephrasings with the prompt.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/write-oracle.js [models/default]   # TASK=recent AT=last LAYER=2 N=30 STEPS=300
 */
import { readFileSync } from 'node:fs';
import type { Rank } from '@tensorflow/tfjs';
import { tf } from '../src/tensor/tf.js';
import { initBackend } from '../src/tensor/backend.js';
import { loadModelFolder } from '../src/model/folder.js';
import { crossEntropy } from '../src/tensor/ops.js';

interface BenchRecord { task: string; split: string; subject: string; prompt: string; target: string; rephrase: string[]; heldOutRephrase: string[] }

const DIR = process.argv[2] ?? 'models/default';
const TASK = process.env.TASK ?? 'recent';
const AT = process.env.AT ?? 'last';
const LAYER = Number(process.env.LAYER ?? 2);
const N = Number(process.env.N ?? 30);
const STEPS = Number(process.env.STEPS ?? 300);
const PENALTY = Number(process.env.PENALTY ?? 1e-4);
if (AT !== 'last' && AT !== 'subject') throw new Error(`AT=${AT}: choose last or subject`);

const backend = await initBackend();
const { model, tokenizer } = await loadModelFolder(DIR);
if (LAYER < 1 || LAYER >= model.config.nLayer) throw new Error(`LAYER=${LAYER}: choose 1 to ${model.config.nLayer - 1}`);
const records = (JSON.parse(readFileSync('data/bench.json', 'utf8')) as { records: BenchRecord[] }).records.filter((r) => r.task === TASK && r.split === 'test').slice(0, N);

interface Sequence { ids: number[]; rows: number[]; targets: number[]; at: number }

/** The prompt and target teacher-forced, with the position δ is written at; undefined when the subject is not in the prompt. */
function sequenceOf(prompt: string, target: string, subject: string): Sequence | undefined {
  const p = tokenizer.encode(prompt);
  const t = tokenizer.encode(target);
  let at = p.length - 1;
  if (AT === 'subject') {
    const i = prompt.lastIndexOf(subject);
    if (i < 0) return undefined;
    at = tokenizer.encode(prompt.slice(0, i + subject.length)).length - 1;
  }
  return { ids: [...p, ...t.slice(0, -1)], rows: t.map((_, k) => p.length - 1 + k), targets: t, at };
}

/** The residual stream entering block LAYER for the sequence (kept; the caller disposes it). */
function prefixOf(s: Sequence): tf.Tensor2D {
  const residuals = new Map<number, tf.Tensor2D | null>([[LAYER - 1, null]]);
  tf.tidy(() => {
    model.hidden(tf.tensor2d([s.ids], [1, s.ids.length], 'int32'), { residuals });
  });
  return residuals.get(LAYER - 1)!;
}

/** Logits at the target rows with δ added to `x` (the residual stream entering block LAYER) at `at`. */
function logitsWith(s: Sequence, x: tf.Tensor2D, delta: tf.Tensor1D): tf.Tensor2D {
  const ids = tf.tensor2d([s.ids], [1, s.ids.length], 'int32');
  const mask = tf.oneHot(tf.tensor1d([s.at], 'int32'), s.ids.length).reshape([s.ids.length, 1]);
  const shifted = tf.add(x, tf.mul(mask, delta.reshape([1, -1]))) as tf.Tensor2D;
  return model.logits(ids, { start: { layer: LAYER, x: shifted }, rows: s.rows });
}

/** Whether greedy decoding starts with the target (every teacher-forced argmax is the target's token); `x` as prefixOf(s) gives it. */
function holds(s: Sequence, delta: tf.Tensor1D, x?: tf.Tensor2D): boolean {
  const start = x ?? prefixOf(s);
  const argmax = tf.tidy(() => logitsWith(s, start, delta).argMax(1).dataSync());
  if (x === undefined) start.dispose();
  return s.targets.every((t, k) => argmax[k] === t);
}

const count = { prompt: 0, rephrase: 0, rephraseAll: 0, heldOut: 0, heldOutAll: 0, edits: 0 };
for (const r of records) {
  const s = sequenceOf(r.prompt, r.target, r.subject);
  if (s === undefined) continue;
  count.edits++;
  const delta = tf.variable(tf.zeros([model.config.nEmbd])) as tf.Variable<Rank.R1>;
  const opt = tf.train.adam(0.1);
  const targets = tf.tensor1d(s.targets, 'int32');
  const weights = tf.ones([s.targets.length]) as tf.Tensor1D;
  const x = prefixOf(s);
  for (let k = 0; k < STEPS; k++) {
    opt.minimize(() => tf.add(crossEntropy(logitsWith(s, x, delta), targets, weights), tf.mul(PENALTY, tf.sum(tf.square(delta)))) as tf.Scalar, false, [delta]);
  }
  if (holds(s, delta, x)) count.prompt++;
  const check = (prompts: string[], key: 'rephrase' | 'heldOut') => {
    for (const q of prompts) {
      const t = sequenceOf(q, r.target, r.subject);
      count[`${key}All`]++;
      if (t !== undefined && holds(t, delta)) count[key]++;
    }
  };
  check(r.rephrase, 'rephrase');
  check(r.heldOutRephrase, 'heldOut');
  tf.dispose([delta, targets, weights, x]);
  opt.dispose();
}
const pct = (a: number, b: number) => (b === 0 ? '–' : ((100 * a) / b).toFixed(0));
console.log(`${backend}: ${DIR}, ${TASK} test, ${count.edits} records, δ at the ${AT === 'last' ? 'last prompt token' : "subject's last token"} entering block ${LAYER} (${STEPS} steps):`);
console.log(`  prompt ${pct(count.prompt, count.edits)}%  rephrasings ${pct(count.rephrase, count.rephraseAll)}%  held-out forms ${pct(count.heldOut, count.heldOutAll)}%`);
