/**
 * The same GPT loss written with stock tfjs ops only, for the bench's "custom-grad vs plain
 * autodiff" ratio: matMul + bias, tf.moments LayerNorm, tanh GELU with tf.pow, one-hot embeddings
 * (tf.gather has no gradient on wasm), tf.losses.softmaxCrossEntropy. It reads the same
 * parameters as src/model/gpt2.ts and gives the same loss; it is not used outside bench/.
 */
import { tf } from '../src/tensor/tf.js';
import type { GPTConfig, Params } from '../src/model/gpt2.js';

function linear(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return tf.add(tf.matMul(x, w as tf.Tensor2D), b);
}

function layerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), g), b);
}

function gelu(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
}

/** Mean next-token cross-entropy of targets [B, T] given ids [B, T]. */
export function plainLoss(c: GPTConfig, p: Params, ids: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  const [b, t] = ids.shape;
  const { nEmbd: e, nHead: nh, vocabSize: v } = c;
  const hs = e / nh;
  const onehot = (z: tf.Tensor, n: number) => tf.cast(tf.oneHot(tf.reshape(z, [-1]) as tf.Tensor1D, n), 'float32') as tf.Tensor2D;
  const tok = tf.matMul(onehot(ids, v), p['wte.weight'] as tf.Tensor2D); // (B·T, E)
  const pos = tf.slice(p['wpe.weight'], [0, 0], [t, e]); // (T, E), broadcast over B
  let x = tf.reshape(tf.add(tf.reshape(tok, [b, t, e]), pos), [b * t, e]) as tf.Tensor2D;
  const mask = tf.linalg.bandPart(tf.ones([t, t]), -1, 0); // 1 on and below the diagonal
  const bias = tf.mul(tf.sub(1, mask), -1e9);
  for (let l = 0; l < c.nLayer; l++) {
    const q0 = `h.${l}.`;
    const w = (n: string) => p[`${q0}${n}`];
    const qkv = linear(layerNorm(x, w('ln_1.weight'), w('ln_1.bias'), c.layerNormEps), w('attn.c_attn.weight'), w('attn.c_attn.bias'));
    const [q, k, vv] = tf.split(qkv, 3, 1).map((z) => tf.transpose(tf.reshape(z, [b, t, nh, hs]), [0, 2, 1, 3])); // (B, nh, T, hs)
    const att = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hs)), bias)); // (B, nh, T, T)
    const y = tf.reshape(tf.transpose(tf.matMul(att, vv), [0, 2, 1, 3]), [b * t, e]) as tf.Tensor2D;
    x = tf.add(x, linear(y, w('attn.c_proj.weight'), w('attn.c_proj.bias')));
    const h = gelu(linear(layerNorm(x, w('ln_2.weight'), w('ln_2.bias'), c.layerNormEps), w('mlp.c_fc.weight'), w('mlp.c_fc.bias'))) as tf.Tensor2D;
    x = tf.add(x, linear(h, w('mlp.c_proj.weight'), w('mlp.c_proj.bias')));
  }
  const hf = layerNorm(x, p['ln_f.weight'], p['ln_f.bias'], c.layerNormEps);
  const logits = tf.matMul(hf, p['wte.weight'] as tf.Tensor2D, false, true); // (B·T, V)
  return tf.losses.softmaxCrossEntropy(onehot(targets, v), logits) as tf.Scalar;
}
