/**
 * Backend selection: tfjs-node-gpu → tfjs-node → wasm → cpu, first that loads wins.
 * EDIT_BACKEND forces one ("node-gpu" | "node" | "wasm" | "cpu"); a forced backend
 * that cannot load is an error, not a silent fallback.
 */
import { tf } from './tf.js';
import { EditError } from '../errors.js';

export type BackendName = 'node-gpu' | 'node' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['node-gpu', 'node', 'wasm', 'cpu'];

const PACKAGES: Record<BackendName, string | undefined> = {
  'node-gpu': '@tensorflow/tfjs-node-gpu',
  node: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: undefined,
};
/** The name each package registers with tfjs. */
const TF_NAMES: Record<BackendName, string> = { 'node-gpu': 'tensorflow', node: 'tensorflow', wasm: 'wasm', cpu: 'cpu' };

let chosen: BackendName | undefined;

async function tryLoad(name: BackendName): Promise<string | undefined> {
  const pkg = PACKAGES[name];
  try {
    if (pkg !== undefined) {
      const spec: string = pkg; // a non-literal specifier: the package may be absent
      await import(spec);
    }
    const ok = await tf.setBackend(TF_NAMES[name]);
    if (!ok) return `tfjs could not initialise the ${name} backend`;
    await tf.ready();
    // The cpu backend prints a banner recommending tfjs-node on first use; we say which backend runs ourselves.
    if (name === 'cpu') (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
    return undefined;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND') return `${pkg} is not installed`;
    return (err as Error).message.split('\n')[0];
  }
}

/** Initialise tfjs once per process and return the backend's name. */
export async function initBackend(forced: string | undefined = process.env.EDIT_BACKEND): Promise<BackendName> {
  if (chosen !== undefined) return chosen;
  const want = forced?.trim();
  if (want !== undefined && want !== '') {
    if (!(BACKENDS as readonly string[]).includes(want)) {
      throw new EditError(`EDIT_BACKEND=${want} is not a backend; choose one of ${BACKENDS.join(', ')}`);
    }
    const why = await tryLoad(want as BackendName);
    if (why !== undefined) throw new EditError(`EDIT_BACKEND=${want} is not available: ${why}`);
    chosen = want as BackendName;
    return chosen;
  }
  for (const name of BACKENDS) {
    if ((await tryLoad(name)) === undefined) {
      chosen = name;
      return name;
    }
  }
  throw new EditError('no TensorFlow.js backend could be initialised');
}

/**
 * Switch this process to one backend (for benchmarks that compare backends in one run).
 * Returns why it could not load, or undefined on success; on success currentBackend() reports it
 * and a later initBackend() keeps it. Tensors made on the previous backend should be disposed first.
 */
export async function useBackend(name: BackendName): Promise<string | undefined> {
  const why = await tryLoad(name);
  if (why === undefined) chosen = name;
  return why;
}

export function currentBackend(): BackendName | undefined {
  return chosen;
}
