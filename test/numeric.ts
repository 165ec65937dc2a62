/** Numeric comparison shared by the tests that check a kernel or layer against a reference. */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';

/** max |a-b| / max |b|: relative to the size of the reference values. */
export function relError(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, 'result sizes differ');
  let diff = 0;
  let scale = 1e-12;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

/** max |a-b| over two tensors of one shape. */
export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}
