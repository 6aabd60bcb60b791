/**
 * What the base model knows: top-1 greedy accuracy of the whole object on the knowledge probes
 * of data/probes.json (made by `npm run data`), per relation, for trained phrasings (held-in)
 * and for the phrasing each relation kept out of training (held-out).
 *
 *   npm run eval:model [-- models/default]    # writes <model>/knowledge.json and the manifest summary
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../src/tensor/backend.js';
import { loadModelFolder, MANIFEST } from '../src/model/folder.js';
import { generateBatch } from '../src/model/gpt2.js';
import { Rng } from '../src/util/random.js';

interface Probe { prompt: string; answer: string; subject: string; relation: string; form: number; heldOut: boolean }

async function main(): Promise<void> {
  const dir = process.argv[2] ?? 'models/default';
  const backend = await initBackend();
  const { model, tokenizer, manifest } = await loadModelFolder(dir);
  const probes = JSON.parse(readFileSync('data/probes.json', 'utf8')) as Probe[];
  // Every held-out probe; held-in: the first trained form (the one edit prompts use) and one other, per fact.
  const rng = new Rng(99);
  const byFact = new Map<string, Probe[]>();
  for (const p of probes) {
    const key = `${p.relation}\u0000${p.subject}`;
    if (!byFact.has(key)) byFact.set(key, []);
    byFact.get(key)!.push(p);
  }
  // EVAL_EVERY=k evaluates every k-th fact only (a quick read during training).
  const every = Number(process.env.EVAL_EVERY ?? 1);
  const chosen: Probe[] = [];
  for (const [i, list] of [...byFact.values()].entries()) {
    if (i % every !== 0) continue;
    const trained = list.filter((p) => !p.heldOut);
    chosen.push(...list.filter((p) => p.heldOut));
    if (trained.length > 0) chosen.push(trained[0]);
    if (trained.length > 1) chosen.push(trained[1 + rng.int(trained.length - 1)]);
  }
  const stats = new Map<string, { heldIn: [number, number]; heldOut: [number, number] }>();
  const misses: Array<{ prompt: string; expected: string; got: string }> = [];
  const t0 = Date.now();
  // Batched greedy generation (the same ids as one at a time), 500 probes per call for progress lines.
  const wants = chosen.map((p) => tokenizer.encode(p.answer));
  const outputs: number[][] = [];
  for (let at = 0; at < chosen.length; at += 500) {
    const part = chosen.slice(at, at + 500);
    outputs.push(...generateBatch(model, part.map((p) => tokenizer.encode(p.prompt)), { maxNewTokens: wants.slice(at, at + 500).map((w) => w.length) }));
    console.error(`${outputs.length}/${chosen.length} probes`);
  }
  chosen.forEach((p, i) => {
    const want = wants[i];
    const got = outputs[i];
    const ok = got.length === want.length && got.every((x, j) => x === want[j]);
    if (!stats.has(p.relation)) stats.set(p.relation, { heldIn: [0, 0], heldOut: [0, 0] });
    const s = stats.get(p.relation)!;
    const cell = p.heldOut ? s.heldOut : s.heldIn;
    cell[0] += ok ? 1 : 0;
    cell[1] += 1;
    if (!ok && misses.length < 40 && p.heldOut) misses.push({ prompt: p.prompt, expected: p.answer, got: tokenizer.decode(got) });
  });
  const pct = (c: [number, number]) => (c[1] === 0 ? null : Number(((100 * c[0]) / c[1]).toFixed(1)));
  const total = { heldIn: [0, 0] as [number, number], heldOut: [0, 0] as [number, number] };
  const perRelation: Record<string, { heldIn: number | null; heldOut: number | null; n: number }> = {};
  console.log(`${'relation'.padEnd(16)} ${'held-in %'.padStart(10)} ${'held-out %'.padStart(11)} ${'facts'.padStart(6)}`);
  for (const [rel, s] of stats) {
    perRelation[rel] = { heldIn: pct(s.heldIn), heldOut: pct(s.heldOut), n: s.heldOut[1] };
    for (const k of ['heldIn', 'heldOut'] as const) {
      total[k][0] += s[k][0];
      total[k][1] += s[k][1];
    }
    console.log(`${rel.padEnd(16)} ${String(pct(s.heldIn)).padStart(10)} ${String(pct(s.heldOut)).padStart(11)} ${String(s.heldOut[1]).padStart(6)}`);
  }
  console.log(`${'all'.padEnd(16)} ${String(pct(total.heldIn)).padStart(10)} ${String(pct(total.heldOut)).padStart(11)}`);
  const report = {
    command: `npm run data && npm run eval:model -- ${dir}`,
    metric: 'top-1 greedy generation equals the whole object (all its tokens)',
    backend,
    probes: { heldIn: total.heldIn[1], heldOut: total.heldOut[1] },
    accuracy: { heldIn: pct(total.heldIn), heldOut: pct(total.heldOut) },
    perRelation,
    heldOutMisses: misses,
    seconds: Math.round((Date.now() - t0) / 1000),
  };
  if (every !== 1) return; // a sample is not the model's record
  writeFileSync(join(dir, 'knowledge.json'), JSON.stringify(report, null, 1) + '\n');
  const manifestPath = join(dir, MANIFEST);
  const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
  m.knowledge = { file: 'knowledge.json', heldIn: report.accuracy.heldIn, heldOut: report.accuracy.heldOut, metric: report.metric };
  writeFileSync(manifestPath, JSON.stringify({ ...manifest, ...m }, null, 2) + '\n');
  console.log(`wrote ${join(dir, 'knowledge.json')} (${report.seconds} s on ${backend})`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
