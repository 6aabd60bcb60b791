/** Timing, memory and machine facts shared by the bench sections. */
import { tf } from '../src/tensor/tf.js';
import { cpus } from 'node:os';
import type { BackendName } from '../src/tensor/backend.js';

/** What every record carries, so results from different machines and days can be told apart. */
export interface Stamp {
  node: string;
  cpu: string;
  date: string;
}

export function stamp(): Stamp {
  return { node: process.version, cpu: cpus()[0]?.model.trim() ?? 'unknown', date: new Date().toISOString() };
}

export type Section = 'matmul' | 'train' | 'train threads' | 'scale' | 'generate' | 'edits' | 'joint' | 'judge' | 'editors';

/** The backend a record ran on; 'none' for CLI work that loads no TensorFlow.js (validate, plan --structural). */
export type RecordBackend = BackendName | 'none';

/** One measured number. `metric` names what was measured within the section (a shape, a variant). */
export interface BenchRecord extends Stamp {
  section: Section;
  metric: string;
  backend: RecordBackend;
  value: number;
  unit: string;
  /** How it was measured: repetitions, sizes, raw timings. */
  detail: Record<string, unknown>;
}

/** Process and tfjs memory at the end of a section, while its tensors are still alive. */
export interface MemoryRecord extends Stamp {
  after: string;
  backend: RecordBackend;
  /** process.resourceUsage().maxRSS: the process's RSS high-water mark so far. */
  maxRssMB: number;
  rssMB: number;
  tfBytes: number;
  tfTensors: number;
  /** numTensors grew across repeated identical steps, or stayed above its start after disposal. */
  leak: boolean;
  leakDetail: string;
}

export function memoryNow(): { maxRssMB: number; rssMB: number; tfBytes: number; tfTensors: number } {
  const m = tf.memory();
  return {
    maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024), // maxRSS is in KiB
    rssMB: Math.round(process.memoryUsage().rss / 2 ** 20),
    tfBytes: m.numBytes,
    tfTensors: m.numTensors,
  };
}

export function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function ms(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e6;
}

export const now = (): bigint => process.hrtime.bigint();

/** Rounds to 3 significant digits for the JSON (the machines are noisier than that). */
export function sig(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(3)) : x;
}
