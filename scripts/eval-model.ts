/**
 * What the base model knows: top-1 greedy accuracy of the whole object on the knowledge probes of
 * data/probes.json (made by `npm run data`), per relation and per kind of wording:
 * - trained: the edit-prompt form, another base form and a composed frame, all trained;
 * - composition: the base form and composed frames each relation kept out of training (their parts
 *   were trained, for other relations): does knowledge transfer across phrasings;
 * - frame: frames with a part never trained for any relation (an honest measure of unseen wording);
 * - recent: facts never in the corpus (the `recent` insertion pool): must be unknown (near 0%).
 *
 *   npm run eval:model [-- models/default [data]]   # writes <model>/knowledge.json and the manifest summary
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../src/tensor/backend.js';
import { loadModelFolder, MANIFEST } from '../src/model/folder.js';
import { generateBatch } from '../src/model/decode.js';

const KINDS = ['trained', 'composition', 'frame', 'recent'] as const;
type Kind = (typeof KINDS)[number];
interface Probe { prompt: string; answer: string; subject: string; relation: string; form: number; kind: Kind; heldOut: boolean }

async function main(): Promise<void> {
  const dir = process.argv[2] ?? 'models/default';
  const backend = await initBackend();
  const { model, tokenizer, manifest } = await loadModelFolder(dir);
  const all = JSON.parse(readFileSync(`${process.argv[3] ?? 'data'}/probes.json`, 'utf8')) as Probe[];
  // EVAL_EVERY=k evaluates every k-th probe only (a quick read during training).
  const every = Number(process.env.EVAL_EVERY ?? 1);
  const chosen = all.filter((_, i) => i % every === 0);
  const cells = new Map<string, Record<Kind, [number, number]>>();
  const misses: Record<Kind, Array<{ prompt: string; expected: string; got: string }>> = { trained: [], composition: [], frame: [], recent: [] };
  const t0 = Date.now();
  // Batched greedy generation (the same ids as one at a time), 500 probes per call for progress lines.
  const wants = chosen.map((p) => tokenizer.encode(p.answer));
  const outputs: number[][] = [];
  for (let at = 0; at < chosen.length; at += 500) {
    const part = chosen.slice(at, at + 500);
    outputs.push(...generateBatch(model, part.map((p) => tokenizer.encode(p.prompt)), { maxNewTokens: wants.slice(at, at + 500).map((w) => w.length) }));
    console.error(`${outputs.length}/${chosen.length} probes`);
  }
  const empty = (): Record<Kind, [number, number]> => ({ trained: [0, 0], composition: [0, 0], frame: [0, 0], recent: [0, 0] });
  const total = empty();
  chosen.forEach((p, i) => {
    const want = wants[i];
    const got = outputs[i];
    const ok = got.length === want.length && got.every((x, j) => x === want[j]);
    if (!cells.has(p.relation)) cells.set(p.relation, empty());
    for (const c of [cells.get(p.relation)![p.kind], total[p.kind]]) {
      c[0] += ok ? 1 : 0;
      c[1] += 1;
    }
    const wrong = p.kind === 'recent' ? ok : !ok;
    if (wrong && misses[p.kind].length < 15) misses[p.kind].push({ prompt: p.prompt, expected: p.answer, got: tokenizer.decode(got) });
  });
  const pct = (c: [number, number]) => (c[1] === 0 ? null : Number(((100 * c[0]) / c[1]).toFixed(1)));
  const row = (name: string, r: Record<Kind, [number, number]>) =>
    `${name.padEnd(16)} ${KINDS.map((k) => String(pct(r[k]) ?? '-').padStart(14)).join('')}`;
  console.log(`${'relation'.padEnd(16)} ${KINDS.map((k) => `${k} %`.padStart(14)).join('')}`);
  const perRelation: Record<string, Record<Kind, number | null> & { probes: Record<Kind, number> }> = {};
  for (const [rel, r] of cells) {
    perRelation[rel] = { ...(Object.fromEntries(KINDS.map((k) => [k, pct(r[k])])) as Record<Kind, number | null>), probes: Object.fromEntries(KINDS.map((k) => [k, r[k][1]])) as Record<Kind, number> };
    console.log(row(rel, r));
  }
  console.log(row('all', total));
  const accuracy = Object.fromEntries(KINDS.map((k) => [k, pct(total[k])])) as Record<Kind, number | null>;
  const report = {
    command: `npm run data && npm run eval:model -- ${[dir, ...process.argv.slice(3, 4)].join(' ')}`,
    metric: 'top-1 greedy generation equals the whole object (all its tokens)',
    kinds: {
      trained: 'the edit-prompt form, another base form and a composed frame, all trained',
      composition: "the base form and composed frames this relation kept out of training (their parts trained for other relations)",
      frame: 'frames with an opener, core, question style or wording never trained for any relation',
      recent: 'facts never in the corpus (the recent insertion pool): known % should be near 0',
    },
    backend,
    probes: Object.fromEntries(KINDS.map((k) => [k, total[k][1]])),
    accuracy,
    perRelation,
    misses,
    seconds: Math.round((Date.now() - t0) / 1000),
  };
  if (every !== 1) return; // a sample is not the model's record
  writeFileSync(join(dir, 'knowledge.json'), JSON.stringify(report, null, 1) + '\n');
  const manifestPath = join(dir, MANIFEST);
  const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
  m.knowledge = { file: 'knowledge.json', heldIn: accuracy.trained, heldOut: accuracy.composition, unseenFrames: accuracy.frame, recent: accuracy.recent, metric: report.metric };
  writeFileSync(manifestPath, JSON.stringify({ ...manifest, ...m }, null, 2) + '\n');
  console.log(`wrote ${join(dir, 'knowledge.json')} (${report.seconds} s on ${backend})`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
