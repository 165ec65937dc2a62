import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { maxAbsDiff } from '../numeric.js';
import { initBackend } from '../../src/backends/index.js';
import { createParams, disposeParams, trainableVars } from '../../src/model/nn/params.js';
import { createExtractor, createPosterExtractor, extractorConfig, validateExtractorConfig, type ExtractorOverrides, type PresetName } from '../../src/model/extractor/index.js';
import { loadWeights, readModelConfig, saveModel } from '../../src/model/weights/index.js';

const backend = await initBackend(undefined, { log: false });
const TRAIN = { training: true };

function build(preset: Exclude<PresetName, 'fer'>, overrides: ExtractorOverrides = {}, seed = 3) {
  const store = createParams(seed);
  const fx = createPosterExtractor(store, extractorConfig(preset, overrides));
  return { store, fx };
}

/** Deterministic pseudo-random images in [0, 1]. */
function images(n: number, side: number, seed: number): tf.Tensor4D {
  const data = new Float32Array(n * side * side * 3);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32;
  }
  return tf.tensor4d(data, [n, side, side, 3]);
}

test('full preset: spec shapes at every tap, 43-47 M parameters, ~8.4 G MACs', () => {
  const { store, fx } = build('full');
  console.log(`full extractor: ${(fx.paramCount / 1e6).toFixed(2)} M parameters, ${(fx.macsPerFace / 1e9).toFixed(2)} G MACs (thop-style "FLOPs") per face`);
  assert.ok(fx.paramCount >= 43e6 && fx.paramCount <= 47e6, `parameter count ${fx.paramCount}`);
  assert.ok(fx.macsPerFace > 7.5e9 && fx.macsPerFace < 9.5e9, `MACs ${fx.macsPerFace}`);
  tf.tidy(() => {
    const t = fx.taps(images(1, 224, 1));
    assert.deepEqual(t.image.map((x) => x.shape), [[1, 56, 56, 64], [1, 28, 28, 128], [1, 14, 14, 256]]);
    assert.deepEqual(t.landmark.map((x) => x.shape), [[1, 28, 28, 64], [1, 14, 14, 128], [1, 7, 7, 512]]);
    assert.deepEqual(t.fused.map((x) => x.shape), [[1, 28, 28, 64], [1, 14, 14, 128], [1, 7, 7, 256]]);
    assert.deepEqual(t.tokens.shape, [1, 147, 768]);
    assert.deepEqual(t.embedding.shape, [1, 768]);
    assert.ok(t.embedding.dataSync().every(Number.isFinite));
  });
  disposeParams(store);
});

const KEY_BIAS = /\.attn\.k\.bias$/;

function gradientCheck(frozenImage: boolean) {
  const { store, fx } = build('tiny', { fusion: { dropPath: [0, 0, 0] }, vit: { dropPath: 0 }, frozen: { landmark: true, image: frozenImage } });
  const vars = trainableVars(store);
  const names = new Map([...store.vars].map(([n, v]) => [v, n]));
  const trainableNames = vars.map((v) => names.get(v)!);
  const x = images(4, fx.config.inputSize, 7);
  const w = tf.randomNormal([4, fx.config.embedDim], 0, 1, 'float32', 5);
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(fx.forward(x, TRAIN), w)) as tf.Scalar, vars);
  const norms = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.norm(g).dataSync()[0]]));
  const byName = new Map(vars.map((v) => [names.get(v)!, norms[v.name]]));
  tf.dispose([x, w, value, ...Object.values(grads)]);
  return { store, trainableNames, byName };
}

test('gradient reaches every trainable variable; frozen streams are not trainable', () => {
  const { store, trainableNames, byName } = gradientCheck(false);
  assert.ok(trainableNames.some((n) => n.startsWith('extractor.image.')));
  assert.ok(!trainableNames.some((n) => n.startsWith('extractor.landmark.')), 'a frozen landmark stream has no trainable variable');
  const top = Math.max(...byName.values());
  for (const [name, norm] of byName) {
    // A key bias adds the same logit to every key of a query, which softmax ignores: its true
    // gradient is zero (in PyTorch too), so it must be negligible rather than non-zero.
    if (KEY_BIAS.test(name)) assert.ok(norm < 1e-6 * top, `${name}: grad norm ${norm} should vanish`);
    else assert.ok(norm > 1e-9 * top && Number.isFinite(norm), `${name}: grad norm ${norm}`);
  }
  disposeParams(store);

  const frozen = gradientCheck(true);
  assert.ok(!frozen.trainableNames.some((n) => n.startsWith('extractor.image.') || n.startsWith('extractor.landmark.')));
  assert.ok(frozen.trainableNames.some((n) => n.startsWith('extractor.vit.')));
  for (const [name, norm] of frozen.byName) if (!KEY_BIAS.test(name)) assert.ok(norm > 0, `${name}: grad norm ${norm}`);
  disposeParams(frozen.store);
});

test(`gradients on ${backend.name} match the cpu backend`, { skip: backend.name === 'cpu' && 'already on cpu' }, async () => {
  const { store, fx } = build('tiny', { fusion: { dropPath: [0, 0, 0] }, vit: { dropPath: 0 } });
  const vars = trainableVars(store);
  const run = () => {
    // A fresh copy of the inputs per backend: tensors are bound to the backend that made them.
    const x = images(3, fx.config.inputSize, 11);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(fx.forward(x, TRAIN))) as tf.Scalar, vars);
    const out = vars.map((v) => grads[v.name].dataSync().slice());
    tf.dispose([x, value, ...Object.values(grads)]);
    return out;
  };
  // Moving statistics change in training mode; restore them so both runs see the same model.
  const stats = [...store.vars].filter(([n]) => n.endsWith('.movingMean') || n.endsWith('.movingVar')).map(([, v]) => [v, v.clone()] as const);
  const here = run();
  for (const [v, s] of stats) v.assign(s);
  await tf.setBackend('cpu');
  try {
    const ref = run();
    const top = Math.max(...ref.map((g) => Math.max(...g.map(Math.abs))));
    for (let i = 0; i < vars.length; i++) {
      // Gradients that are zero in exact arithmetic (key biases) are compared on the global scale.
      const scale = Math.max(1e-6 * top, ...ref[i].map(Math.abs));
      const err = Math.max(...here[i].map((g, j) => Math.abs(g - ref[i][j])));
      assert.ok(err <= 2e-3 * scale, `variable ${i}: max abs diff ${err} vs scale ${scale}`);
    }
  } finally {
    await tf.setBackend(backend.name);
    tf.dispose(stats.map(([, s]) => s));
    disposeParams(store);
  }
});

test('training mode updates the image stream BatchNorm statistics but never the frozen landmark ones', () => {
  const { store, fx } = build('tiny', { frozen: { landmark: true, image: false } });
  const read = (n: string) => store.vars.get(n)!.dataSync().slice();
  const lmStat = 'extractor.landmark.conv1.bn.movingMean';
  const imStat = 'extractor.image.stem.bn.movingMean';
  const [lm0, im0] = [read(lmStat), read(imStat)];
  tf.tidy(() => void fx.forward(images(2, fx.config.inputSize, 3), TRAIN));
  assert.deepEqual(read(lmStat), lm0);
  assert.notDeepEqual(read(imStat), im0);
  disposeParams(store);
});

test('inference is batch invariant: alone vs in a batch of 32 (lite)', () => {
  const { store, fx } = build('lite');
  const batch = images(32, fx.config.inputSize, 21);
  const all = tf.tidy(() => fx.forward(batch));
  for (const i of [0, 13, 31]) {
    const alone = tf.tidy(() => fx.forward(batch.slice([i, 0, 0, 0], [1, -1, -1, -1])));
    const d = maxAbsDiff(alone, all.slice([i, 0], [1, -1]));
    assert.ok(d <= 1e-4, `sample ${i}: max abs diff ${d}`);
    alone.dispose();
  }
  tf.dispose([batch, all]);
  disposeParams(store);
});

test('no tensor leaks across 50 forwards (inference and training)', () => {
  const { store, fx } = build('tiny');
  const x = images(2, fx.config.inputSize, 5);
  const step = (i: number) => tf.tidy(() => void fx.forward(x, i % 2 === 0 ? TRAIN : { training: false }));
  step(0); // the first call may create backend-side caches
  const before = tf.memory().numTensors;
  for (let i = 0; i < 50; i++) step(i);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  disposeParams(store);
});

test('no NaN or Inf for extreme inputs, any batch size, both modes', () => {
  for (const preset of ['tiny', 'lite'] as const) {
    const { store, fx } = build(preset);
    const s = fx.config.inputSize;
    const cases: [string, () => tf.Tensor4D][] = [
      ['zeros', () => tf.zeros([1, s, s, 3])],
      ['ones', () => tf.ones([3, s, s, 3])],
      ['random', () => images(5, s, 9)],
      // A caller that already applied ImageNet normalisation (values about -2.1..2.6).
      ['imagenet-normalised', () => tf.div(tf.sub(images(2, s, 4), [0.485, 0.456, 0.406]), [0.229, 0.224, 0.225]) as tf.Tensor4D],
      ['checkerboard', () => tf.tile(tf.tensor4d([0, 1, 1, 0], [1, 2, 2, 1]), [2, s / 2, s / 2, 3]) as tf.Tensor4D],
    ];
    for (const [label, make] of cases) {
      for (const ctx of [{ training: false }, TRAIN]) {
        const ok = tf.tidy(() => fx.forward(make(), ctx).dataSync().every(Number.isFinite));
        assert.ok(ok, `${preset} ${label} training=${ctx.training}`);
      }
    }
    disposeParams(store);
  }
});

test('stochastic depth is active only in training and keeps outputs finite', () => {
  const { store, fx } = build('tiny', { fusion: { dropPath: [0.5, 0.5, 0.5] }, vit: { dropPath: 0.5 } });
  const x = images(8, fx.config.inputSize, 2);
  const [a, b] = [tf.tidy(() => fx.forward(x)), tf.tidy(() => fx.forward(x))];
  assert.equal(maxAbsDiff(a, b), 0, 'inference is deterministic');
  const outs = [0, 1, 2].map(() => tf.tidy(() => fx.forward(x, TRAIN)));
  assert.ok(outs.every((o) => o.dataSync().every(Number.isFinite)));
  assert.ok(maxAbsDiff(outs[0], outs[1]) > 0 || maxAbsDiff(outs[1], outs[2]) > 0, 'training draws random paths');
  tf.dispose([x, a, b, ...outs]);
  disposeParams(store);
});

test('input of the wrong size is rejected with the expected shape', () => {
  const { store, fx } = build('tiny');
  assert.throws(() => tf.tidy(() => fx.forward(tf.zeros([1, 32, 32, 3]) as tf.Tensor4D)), /expects \[B, 40, 40, 3\] input, got \[1, 32, 32, 3\]/);
  disposeParams(store);
});

test('save / load round trip reproduces the embeddings (tiny)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'arbex-extractor-'));
  try {
    const { store, fx } = build('tiny', {}, 17);
    // Non-default moving statistics, so that they are known to travel too.
    tf.tidy(() => void fx.forward(images(4, fx.config.inputSize, 8), TRAIN));
    await saveModel(dir, { config: fx.config, store });
    const config = validateExtractorConfig(await readModelConfig(dir));
    const store2 = createParams(99);
    const fx2 = createExtractor(store2, config);
    const x = images(3, config.inputSize, 1);
    const before = tf.tidy(() => fx2.forward(x));
    await loadWeights(dir, store2);
    const [a, b] = [tf.tidy(() => fx.forward(x)), tf.tidy(() => fx2.forward(x))];
    assert.ok(maxAbsDiff(a, before) > 1e-3, 'a differently seeded model differs before loading');
    assert.equal(maxAbsDiff(a, b), 0);
    tf.dispose([x, before, a, b]);
    disposeParams(store);
    disposeParams(store2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
