/**
 * TensorFlow.js, loaded with `require`: every module imports `tf` from here, never
 * '@tensorflow/tfjs' itself. An ESM `import` of the package's CommonJS bundles makes Node scan them
 * for named exports first, which takes longer than loading them (~1.2 s against ~0.4 s per process
 * on the 2-core machine, measured); every CLI command that touches a tensor paid it. The same
 * module instance as an `import` would give (Node's one CommonJS cache), so backends registered by
 * either way are the same engine's.
 */
import { createRequire } from 'node:module';
import type * as Tf from '@tensorflow/tfjs';

export const tf: typeof Tf = createRequire(import.meta.url)('@tensorflow/tfjs') as typeof Tf;

/** The package's types under the same name (`tf.Tensor2D` in a type position), as `import * as tf` gave them. */
// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace tf {
  export type Rank = Tf.Rank;
  export type Tensor<R extends Tf.Rank = Tf.Rank> = Tf.Tensor<R>;
  export type Tensor1D = Tf.Tensor1D;
  export type Tensor2D = Tf.Tensor2D;
  export type Tensor3D = Tf.Tensor3D;
  export type Tensor4D = Tf.Tensor4D;
  export type Scalar = Tf.Scalar;
  export type Variable<R extends Tf.Rank = Tf.Rank> = Tf.Variable<R>;
  export type Optimizer = Tf.Optimizer;
  export type GradSaveFunc = Tf.GradSaveFunc;
  export type NamedTensorMap = Tf.NamedTensorMap;
}
