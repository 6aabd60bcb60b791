import { tf } from '../tensor/tf.js';

/**
 * One optimizer step with global-norm gradient clipping: gradients of `loss` w.r.t. `vars`,
 * scaled so their joint L2 norm is at most `clip`, applied. Returns the loss (caller disposes).
 */
export function clippedStep(opt: tf.Optimizer, vars: tf.Variable[], loss: () => tf.Scalar, clip: number): tf.Scalar {
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(loss, vars);
    const norm = tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))));
    const scale = tf.minimum(1, tf.div(clip, tf.add(norm, 1e-6)));
    const clipped: Record<string, tf.Tensor> = {};
    for (const [k, g] of Object.entries(grads)) clipped[k] = tf.mul(g, scale);
    opt.applyGradients(clipped as Parameters<typeof opt.applyGradients>[0]);
    return value;
  });
}
