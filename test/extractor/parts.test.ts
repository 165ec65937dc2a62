import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/index.js';
import { createParams, disposeParams } from '../../src/model/nn/params.js';
import { fusedConvBn, type ConvSpec } from '../../src/model/extractor/parts.js';
import { relativePositionIndex, windowPartition, windowReverse } from '../../src/model/extractor/fusion.js';

await initBackend(undefined, { log: false });

/** The unfused inference computation, op by op, from the stored variables. */
function reference(vars: Map<string, tf.Variable>, x: tf.Tensor4D, spec: ConvSpec, act: boolean): tf.Tensor {
  const w = vars.get('c.weight')! as tf.Tensor4D;
  const stride = spec.stride ?? 1;
  const input = spec.kernel === 3 && stride === 2 ? tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]) : x;
  const pad = spec.kernel === 3 && stride === 2 ? 'valid' : 'same';
  let y: tf.Tensor = spec.depthwise ? tf.depthwiseConv2d(input, w, stride, pad) : tf.conv2d(input, w, stride, pad);
  if (vars.has('c.bias')) y = tf.add(y, vars.get('c.bias')!);
  y = tf.batchNorm(y, vars.get('n.movingMean')!, vars.get('n.movingVar')!, vars.get('n.beta')!, vars.get('n.gamma')!, 1e-5);
  return act ? tf.prelu(y, vars.get('p.alpha')!) : y;
}

test('folded conv + BatchNorm (+ PReLU) equals the unfused layers in inference', () => {
  const specs: [ConvSpec, boolean][] = [
    [{ inCh: 3, outCh: 8, kernel: 3, side: 12 }, true],
    [{ inCh: 6, outCh: 6, kernel: 3, stride: 2, side: 12, depthwise: true }, true],
    [{ inCh: 6, outCh: 10, kernel: 3, stride: 2, side: 12, bias: true }, false],
    [{ inCh: 6, outCh: 4, kernel: 1, stride: 2, side: 12 }, false],
  ];
  for (const [spec, act] of specs) {
    const store = createParams(4);
    const layer = fusedConvBn({ store, cost: { macs: 0 } }, { conv: 'c', bn: 'n', prelu: act ? 'p' : undefined }, spec);
    // Non-trivial statistics and affine parameters, so that folding is really exercised.
    for (const [name, v] of store.vars) {
      if (name === 'c.weight') continue;
      const r = tf.randomUniform(v.shape, 0.2, 1.5, 'float32', name.length);
      v.assign(name.endsWith('movingMean') || name.endsWith('beta') || name.endsWith('bias') ? tf.sub(r, 0.8) : r);
      r.dispose();
    }
    const x = tf.randomNormal([2, spec.side, spec.side, spec.inCh], 0, 1, 'float32', 3) as tf.Tensor4D;
    const [got, want] = [tf.tidy(() => layer(x, { training: false })), tf.tidy(() => reference(store.vars, x, spec, act))];
    assert.deepEqual(got.shape, want.shape);
    const err = tf.tidy(() => tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]);
    assert.ok(err < 1e-4, `${JSON.stringify(spec)}: max abs diff ${err}`);
    tf.dispose([x, got, want]);
    disposeParams(store);
  }
});

test('window partition puts each w×w block in one row and reverses exactly', () => {
  const x = tf.range(0, 2 * 4 * 6 * 3).reshape([2, 4, 6, 3]) as tf.Tensor4D;
  const w = windowPartition(x, 2);
  assert.deepEqual(w.shape, [2 * 2 * 3, 4, 3]);
  // Window 1 of sample 0 covers rows 0-1, columns 2-3.
  const expected = tf.tidy(() => x.slice([0, 0, 2, 0], [1, 2, 2, 3]).reshape([4, 3]).arraySync());
  assert.deepEqual(w.slice([1, 0, 0], [1, 4, 3]).reshape([4, 3]).arraySync(), expected);
  assert.deepEqual(windowReverse(w, 2, 2, 4, 6).arraySync(), x.arraySync());
  assert.deepEqual(windowPartition(x.slice([0, 0, 0, 0], [2, 4, 4, 3]), 4).shape, [2, 16, 3]);
  tf.dispose([x, w]);
});

test('relative position index: same offset, same entry; all entries used', () => {
  const w = 3;
  const idx = relativePositionIndex(w);
  assert.equal(idx.length, 81);
  assert.deepEqual([...new Set(idx)].sort((a, b) => a - b), Array.from({ length: 25 }, (_, i) => i));
  const at = (qy: number, qx: number, ky: number, kx: number) => idx[(qy * w + qx) * w * w + ky * w + kx];
  assert.equal(at(0, 0, 0, 0), at(2, 1, 2, 1)); // zero offset
  assert.equal(at(0, 0, 1, 2), at(1, 0, 2, 2)); // offset (+1, +2)
  assert.notEqual(at(0, 0, 1, 2), at(0, 0, 2, 1));
});
