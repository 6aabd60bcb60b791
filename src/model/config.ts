/** The network's hyperparameters (tf-free: the plan path reads them without loading weights). */
export interface GPTConfig {
  vocabSize: number;
  /** Context length (n_positions). */
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  layerNormEps: number;
  /** Width of the MLP (Hugging Face's n_inner); absent means 4·nEmbd. The key dimension of c_proj. */
  nInner?: number;
}

/** The MLP width of a config: nInner, or GPT-2's 4·nEmbd. */
export function innerDim(c: GPTConfig): number {
  return c.nInner ?? 4 * c.nEmbd;
}

/** The block index of a parameter or layer name "h.<i>.…", or undefined outside the blocks. */
export function blockIndex(name: string): number | undefined {
  const m = /^h\.(\d+)\./.exec(name);
  return m === null ? undefined : Number(m[1]);
}
