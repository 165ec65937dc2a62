import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/index.js';
import { createExtractor, extractorConfig, validateExtractorConfig, type CnnConfig } from '../../src/model/extractor/index.js';
import { createParams, disposeParams, isStat, trainableVars } from '../../src/model/nn/params.js';
import { loadWeights } from '../../src/model/weights/index.js';
import { relError } from '../numeric.js';

await initBackend(undefined, { log: false });
const FER = extractorConfig('fer');

function images(n: number, seed: number): tf.Tensor4D {
  const data = new Float32Array(n * 48 * 48 * 3);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32;
  }
  return tf.tensor4d(data, [n, 48, 48, 3]);
}

test('fer preset: shape, parameter count and cost from the layers built', () => {
  const store = createParams(2);
  const fx = createExtractor(store, FER);
  // conv weights (k*k*in*out) plus BatchNorm gamma and beta, stage by stage.
  const conv = (k: number, i: number, o: number) => k * k * i * o + 2 * o;
  let expected = conv(3, 1, 24);
  let inCh = 24;
  FER.widths.forEach((w, s) => {
    for (let b = 0; b < FER.depths[s]!; b++) {
      expected += conv(3, inCh, w) + conv(3, w, w) + (inCh !== w || (b === 0 && s > 0) ? conv(1, inCh, w) : 0);
      inCh = w;
    }
  });
  assert.equal(fx.paramCount, expected);
  assert.ok(fx.macsPerFace > 1e8 && fx.macsPerFace < 2e8, `MACs ${fx.macsPerFace}`);
  const e = tf.tidy(() => fx.forward(images(3, 1)));
  assert.deepEqual(e.shape, [3, 192]);
  e.dispose();
  disposeParams(store);
});

test('cnn configs are checked with the field named', () => {
  const bad = (over: Partial<CnnConfig>) => () => validateExtractorConfig({ ...FER, ...over });
  assert.throws(bad({ depths: [1, 2] }), /depths must have one entry per stage \(4\)/);
  assert.throws(bad({ embedDim: 100 }), /embedDim must equal the last width \(192\)/);
  assert.throws(bad({ greyStd: 0 }), /greyStd must be positive/);
  assert.throws(() => validateExtractorConfig({ ...FER, backboneSize: 48 }), /backboneSize is not a setting of the cnn extractor/);
  assert.throws(() => validateExtractorConfig({ ...FER, kind: 'resnet' }), /kind must be "poster" or "cnn"/);
});

test('colour crops are reduced to BT.601 grey: a colour image and its grey copy embed alike', () => {
  const store = createParams(3);
  const fx = createExtractor(store, FER);
  const [a, b] = tf.tidy(() => {
    const rgb = images(2, 5);
    const grey = tf.sum(tf.mul(rgb, tf.tensor1d([0.299, 0.587, 0.114])), -1, true);
    return [fx.forward(rgb), fx.forward(tf.tile(grey, [1, 1, 1, 3]) as tf.Tensor4D)];
  });
  assert.ok(relError(a.dataSync() as Float32Array, b.dataSync() as Float32Array) < 1e-5);
  tf.dispose([a, b]);
  disposeParams(store);
});

test('mirror averaging: e is the mean of the face\'s and its mirror\'s embeddings, the same for both', () => {
  // Two stores from the same seed hold the same weights.
  const store = createParams(6);
  const other = createParams(6);
  const plain = createExtractor(store, FER);
  const averaged = createExtractor(other, validateExtractorConfig({ ...FER, mirror: 'average' }));
  assert.equal(averaged.macsPerFace, 2 * plain.macsPerFace);
  const before = tf.memory().numTensors;
  const [face, mirror, expected] = tf.tidy(() => {
    const x = images(3, 9);
    const flipped = tf.reverse(x, 2) as tf.Tensor4D;
    return [averaged.forward(x), averaged.forward(flipped), tf.mul(tf.add(plain.forward(x), plain.forward(flipped)), 0.5)];
  });
  assert.ok(relError(face.dataSync() as Float32Array, expected.dataSync() as Float32Array) < 1e-5);
  assert.ok(relError(face.dataSync() as Float32Array, mirror.dataSync() as Float32Array) < 1e-5);
  // Not trivially symmetric: without averaging, a face and its mirror embed differently.
  const [p, q] = tf.tidy(() => [plain.forward(images(1, 9)), plain.forward(tf.reverse(images(1, 9), 2) as tf.Tensor4D)]);
  assert.ok(relError(p.dataSync() as Float32Array, q.dataSync() as Float32Array) > 1e-3);
  tf.dispose([face, mirror, expected, p, q]);
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => validateExtractorConfig({ ...FER, mirror: 'flip' }), /mirror must be "none" or "average"/);
  disposeParams(store);
  disposeParams(other);
});

test('training: every trainable variable gets a gradient; frozen: none is trainable', () => {
  const store = createParams(4);
  const fx = createExtractor(store, FER);
  const vars = trainableVars(store);
  assert.equal(vars.length, [...store.vars.keys()].filter((n) => !isStat(n)).length);
  const x = images(4, 9);
  const { grads } = tf.variableGrads(() => tf.mean(tf.square(fx.forward(x, { training: true }))) as tf.Scalar, vars);
  for (const [name, g] of Object.entries(grads)) {
    assert.ok(g.dataSync().some((v) => v !== 0), `no gradient reaches ${name}`);
  }
  tf.dispose([x, ...Object.values(grads)]);
  disposeParams(store);
  const frozen = createParams(4);
  createExtractor(frozen, extractorConfig('fer', { frozen: { image: true } }));
  assert.equal(trainableVars(frozen).length, 0);
  disposeParams(frozen);
});

test('inference: a face gives the same embedding alone and in a batch, and no tensor leaks', () => {
  const store = createParams(5);
  const fx = createExtractor(store, FER);
  const batch = images(8, 11);
  const alone = tf.tidy(() => fx.forward(batch.slice([3, 0, 0, 0], [1, 48, 48, 3])));
  const inBatch = tf.tidy(() => fx.forward(batch).slice([3, 0], [1, 192]));
  assert.ok(relError(alone.dataSync() as Float32Array, inBatch.dataSync() as Float32Array) < 1e-5);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 20; i++) tf.tidy(() => void fx.forward(batch));
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([batch, alone, inBatch]);
  disposeParams(store);
});

test('the shipped real-face extractor computes what the PyTorch reference computed (<= 1e-4)', async () => {
  // Embeddings of four grey images computed by reference/torch/fer_cnn.py from the checkpoint the
  // shipped weights were exported from ("export" writes this file).
  const ref = JSON.parse(await readFile(new URL('./fixtures/fer-parity.json', import.meta.url), 'utf8')) as { pixels: number[][]; embedding: number[][] };
  const store = createParams(1);
  const fx = createExtractor(store, FER);
  await loadWeights(new URL('../../weights/fer', import.meta.url).pathname, store, { prefix: 'extractor.' });
  const n = ref.pixels.length;
  const data = new Float32Array(n * 48 * 48 * 3);
  ref.pixels.forEach((img, b) => img.forEach((v, i) => data.fill(v / 255, (b * 2304 + i) * 3, (b * 2304 + i) * 3 + 3)));
  const e = tf.tidy(() => fx.forward(tf.tensor4d(data, [n, 48, 48, 3])));
  const got = e.dataSync() as Float32Array;
  const want = Float32Array.from(ref.embedding.flat());
  let maxAbs = 0;
  for (let i = 0; i < want.length; i++) maxAbs = Math.max(maxAbs, Math.abs(got[i]! - want[i]!));
  assert.ok(maxAbs <= 1e-4, `max |TS - PyTorch| = ${maxAbs}`);
  assert.ok(want.some((v) => Math.abs(v) > 0.1), 'reference embeddings are not trivially small');
  e.dispose();
  disposeParams(store);
});
