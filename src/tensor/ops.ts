/**
 * Small tfjs ops with hand-written gradients. On the wasm backend autodiff is slow where it
 * uses matMul's transpose flags (~10× slower than a plain matMul) and reductions along an axis
 * (~80× slower than the same sum as a matmul with a ones vector), and tf.gather has no gradient
 * at all (UnsortedSegmentSum is missing). These versions use explicit transposes and matmuls;
 * they equal autodiff (checked in test/ops.test.ts).
 */
import { tf } from './tf.js';

type GradFn = (...args: any[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] };
/** tf.customGrad with the argument list typed by the caller (its own typing takes only rest args). */
function custom(fn: GradFn): (...inputs: tf.Tensor[]) => tf.Tensor {
  return tf.customGrad(fn as unknown as Parameters<typeof tf.customGrad>[0]) as (...inputs: tf.Tensor[]) => tf.Tensor;
}

/** y = x·W + b for x [N, in], W [in, out] (Conv1D layout), b [out]. */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  if (b === undefined) {
    const f = custom((xi: tf.Tensor, wi: tf.Tensor, save: tf.GradSaveFunc) => {
      save([xi, wi]);
      return {
        value: tf.matMul(xi as tf.Tensor2D, wi as tf.Tensor2D),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xs, ws] = saved as tf.Tensor2D[];
          return [tf.matMul(dy as tf.Tensor2D, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy as tf.Tensor2D)];
        },
      };
    });
    return f(x, w) as tf.Tensor2D;
  }
  const f = custom((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xi, wi]);
    return {
      value: tf.add(tf.matMul(xi as tf.Tensor2D, wi as tf.Tensor2D), bi),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as tf.Tensor2D[];
        const dy2 = dy as tf.Tensor2D;
        const ones = tf.ones([1, dy2.shape[0]]) as tf.Tensor2D;
        return [
          tf.matMul(dy2, tf.transpose(ws)),
          tf.matMul(tf.transpose(xs), dy2),
          tf.reshape(tf.matMul(ones, dy2), [dy2.shape[1]]),
        ];
      },
    };
  });
  return f(x, w, b) as tf.Tensor2D;
}

/**
 * x·Bᵀ for x [N, E] and a constant B [V, E] whose transpose bT [E, V] is at hand (a tied head):
 * both ways a plain matMul (forward x·bT, gradient dy·B), neither of matMul's slow transpose flags.
 * The gradient goes to x only; B and bT are constants.
 */
export function matMulConstT(x: tf.Tensor2D, b: tf.Tensor2D, bT: tf.Tensor2D): tf.Tensor2D {
  const f = custom((xi: tf.Tensor) => ({
    value: tf.matMul(xi as tf.Tensor2D, bT),
    gradFunc: (dy: tf.Tensor) => tf.matMul(dy as tf.Tensor2D, b),
  }));
  return f(x) as tf.Tensor2D;
}

/** Rows of `table` [V, E] at `ids` [N]; the gradient scatters dy back into the table's shape. */
export function embed(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  // ids go in as an input so the tape keeps them alive until the backward pass.
  const f = custom((t: tf.Tensor, idx: tf.Tensor, save: tf.GradSaveFunc) => {
    save([idx]);
    return {
      value: tf.gather(t, idx),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.scatterND(tf.reshape(saved[0], [-1, 1]), dy, table.shape), tf.zerosLike(saved[0])],
    };
  });
  return f(table, ids) as tf.Tensor2D;
}

/** Sum over the last axis of [N, D] as a matmul: [N, 1]. */
export function rowSum(x: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(x, tf.ones([x.shape[1], 1]) as tf.Tensor2D);
}

/** LayerNorm over the last axis of x [N, E]. */
export function layerNorm(x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor2D {
  const f = custom((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor, save: tf.GradSaveFunc) => {
    const x2 = xi as tf.Tensor2D;
    const e = x2.shape[1];
    const mean = tf.div(rowSum(x2), e);
    const xc = tf.sub(x2, mean);
    const variance = tf.div(rowSum(tf.mul(xc, xc) as tf.Tensor2D), e);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(xc, rstd) as tf.Tensor2D;
    save([xhat, rstd, gi]);
    return {
      value: tf.add(tf.mul(xhat, gi), bi),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, rs, gs] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const dy2 = dy as tf.Tensor2D;
        const n = dy2.shape[0];
        const dxhat = tf.mul(dy2, gs) as tf.Tensor2D;
        const m1 = tf.div(rowSum(dxhat), e);
        const m2 = tf.div(rowSum(tf.mul(dxhat, xh) as tf.Tensor2D), e);
        const dx = tf.mul(rs, tf.sub(tf.sub(dxhat, m1), tf.mul(xh, m2)));
        const ones = tf.ones([1, n]) as tf.Tensor2D;
        const dg = tf.reshape(tf.matMul(ones, tf.mul(dy2, xh) as tf.Tensor2D), [e]);
        const db = tf.reshape(tf.matMul(ones, dy2), [e]);
        return [dx, dg, db];
      },
    };
  });
  return f(x, g, b) as tf.Tensor2D;
}

/**
 * Softmax over the last axis whose sum runs along the row: a masked entry (exp → exactly 0) anywhere
 * in a row leaves the row's other bits unchanged, so a query computes the same bits over any number
 * of hidden keys — alone, left-padded in a batch, or continued from a KV cache split anywhere.
 * tfjs-wasm's fused Softmax kernel does not (measured: up to 2.4e-7 apart with masked keys appended).
 */
export function maskedSoftmax(x: tf.Tensor): tf.Tensor {
  const f = custom((xi: tf.Tensor, save: tf.GradSaveFunc) => {
    const ex = tf.exp(tf.sub(xi, tf.max(xi, -1, true)));
    const y = tf.div(ex, tf.sum(ex, -1, true));
    save([y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [ys] = saved;
        return [tf.mul(ys, tf.sub(dy, tf.sum(tf.mul(dy, ys), -1, true)))];
      },
    };
  });
  return f(x);
}

/** tanh-approximated GELU (GPT-2's gelu_new), written with sigmoid: 0.5(1+tanh(z)) = sigmoid(2z). */
export function gelu(x: tf.Tensor): tf.Tensor {
  const cube = tf.mul(tf.mul(x, x), x);
  return tf.mul(x, tf.sigmoid(tf.mul(tf.add(x, tf.mul(cube, 0.044715)), 2 * Math.sqrt(2 / Math.PI))));
}

/**
 * Weighted mean cross-entropy of logits [N, V] against targets [N]; weights [N] (0 masks a row).
 * Returns a scalar; the gradient is (softmax − onehot)·w / Σw.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D): tf.Scalar {
  const f = custom((lg: tf.Tensor, save: tf.GradSaveFunc) => {
    const l2 = lg as tf.Tensor2D;
    const v = l2.shape[1];
    const m = tf.max(l2, 1, true);
    const ex = tf.exp(tf.sub(l2, m)) as tf.Tensor2D;
    const s = rowSum(ex);
    const lse = tf.add(tf.log(s), m);
    // tf.oneHot(..., 'float32') on wasm 4.22 writes int bits into the float buffer (1 becomes 1.4e-45): cast instead.
    const onehot = tf.cast(tf.oneHot(targets, v), 'float32') as tf.Tensor2D;
    const picked = rowSum(tf.mul(l2, onehot) as tf.Tensor2D);
    const w = tf.reshape(weights, [-1, 1]);
    const total = tf.sum(w);
    const nll = tf.div(tf.sum(tf.mul(tf.sub(lse, picked), w)), tf.maximum(total, 1e-9)) as tf.Scalar;
    save([ex, s, onehot, w, total]);
    return {
      value: nll,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [exs, ss, oh, ws, tot] = saved;
        const probs = tf.div(exs, ss);
        const scale = tf.div(tf.mul(ws, dy), tf.maximum(tot, 1e-9));
        return [tf.mul(tf.sub(probs, oh), scale)];
      },
    };
  });
  return f(logits) as tf.Scalar;
}

/**
 * log-softmax over the last axis of [N, V], with its gradient written out (dx = dy − softmax · Σdy):
 * autodiff would also differentiate through the row max, whose share is zero but costs an
 * element-wise comparison over all N·V logits (a third of a refinement step's time on wasm).
 */
export function logSoftmax(logits: tf.Tensor2D): tf.Tensor2D {
  const f = custom((lg: tf.Tensor, save: tf.GradSaveFunc) => {
    const l2 = lg as tf.Tensor2D;
    const shifted = tf.sub(l2, tf.max(l2, 1, true)) as tf.Tensor2D;
    const y = tf.sub(shifted, tf.log(rowSum(tf.exp(shifted) as tf.Tensor2D)));
    save([y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.sub(dy, tf.mul(tf.exp(saved[0]), rowSum(dy as tf.Tensor2D)))],
    };
  });
  return f(logits) as tf.Tensor2D;
}
