/** Small tensor functions of the ARBEx head that are not layers. */
import * as tf from '@tensorflow/tfjs';

/**
 * c(p) = 1 − H(p), H(p) = −Σ p log p / log L over the last axis, with 0·log 0 = 0.
 * p is floored at logEps inside the log only: for p = 0 the term is 0·log(logEps) = 0 and its
 * gradient stays finite (a tf.where over log p would leak NaN gradients from the masked branch).
 */
export function confidence(p: tf.Tensor, logEps: number): tf.Tensor {
  const L = p.shape[p.shape.length - 1]!;
  const plogp = tf.mul(p, tf.log(tf.maximum(p, logEps)));
  return tf.add(1, tf.div(tf.sum(plogp, -1), Math.log(L)));
}

/** Identity in the forward pass, zero gradient in the backward pass (tfjs has no stopGradient). */
export const stopGradient: (x: tf.Tensor) => tf.Tensor = tf.customGrad((...inputs) => ({
  value: tf.clone(inputs[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));
