import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/index.js';
import { createArbex, loadArbex, saveArbex, validateArbexConfig, type Arbex } from '../../src/model/arbex.js';
import { loadFaceModel } from '../../src/model/face-model.js';
import { createParams, trainableVars } from '../../src/model/nn/params.js';
import type { FaceModel } from '../../src/model/types.js';
import type { PosterConfig } from '../../src/model/extractor/index.js';

await initBackend(undefined, { log: false });

const CLASSES = ['Neutral', 'Anger', 'Happiness', 'Surprise'];
const CONFIG = { classes: CLASSES, extractor: 'tiny', head: { hidden: [16], anchorsPerClass: 3, attention: { tokens: 4, heads: 2 } } };

/** Deterministic pseudo-random RGB crops. */
function crops(n: number, side: number, seed: number): Uint8Array[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () =>
    Uint8Array.from({ length: side * side * 3 }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s >>> 24;
    }),
  );
}

function toImages(c: Uint8Array[], side: number): tf.Tensor4D {
  const data = new Float32Array(c.length * side * side * 3);
  c.forEach((x, i) => data.set(Float32Array.from(x, (v) => v / 255), i * x.length));
  return tf.tensor4d(data, [c.length, side, side, 3]);
}

function maxDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  return Math.max(0, ...a.map((v, i) => Math.abs(v - b[i]!)));
}

describe('validateArbexConfig', () => {
  test('resolves a preset and derives the head fields', () => {
    const c = validateArbexConfig(CONFIG);
    assert.equal(c.extractor.inputSize, 40);
    assert.equal(c.head.embedDim, c.extractor.embedDim);
    assert.deepEqual(c.head.classes, CLASSES);
    assert.equal(c.head.anchorsPerClass, 3);
    // The resolved form (what config.json stores) validates to itself.
    assert.deepEqual(validateArbexConfig(JSON.parse(JSON.stringify(c))), c);
  });

  test('preset with overrides', () => {
    const c = validateArbexConfig({ ...CONFIG, extractor: { preset: 'lite', inputSize: 48, backboneSize: 48, fusion: { windows: [12, 6, 3] } } });
    const extractor = c.extractor as PosterConfig;
    assert.equal(extractor.backboneSize, 48);
    assert.deepEqual(extractor.fusion.windows, [12, 6, 3]);
    assert.deepEqual(extractor.fusion.heads, [1, 2, 4]);
  });

  test('clear errors', () => {
    const bad: [unknown, RegExp][] = [
      [null, /must be a JSON object/],
      [{ ...CONFIG, extra: 1 }, /"extra" is not a known key/],
      [{ ...CONFIG, classes: ['a'] }, /classes must be a list of at least 2/],
      [{ ...CONFIG, extractor: 'huge' }, /"huge" is not a preset/],
      [{ ...CONFIG, extractor: { preset: 'lite', inputSise: 3 } }, /extractor.inputSise is not an extractor setting/],
      [{ ...CONFIG, extractor: { preset: 'tiny', backboneSize: 30 } }, /backboneSize must be a multiple of 16/],
      [{ ...CONFIG, head: { embedDim: 5 } }, /head.embedDim must be left out/],
      [{ ...CONFIG, head: { ...CONFIG.head, dropout: 2 } }, /arbex config: head config: dropout must be a number in \[0, 1\)/],
    ];
    for (const [json, re] of bad) assert.throws(() => validateArbexConfig(json), re);
  });
});

describe('ARBEx model', () => {
  let dir: string;
  let model: Arbex;
  const S = 40;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'arbex-model-'));
    model = createArbex(createParams(5), validateArbexConfig(CONFIG), { seed: 5 });
    // A few training-mode passes move the BatchNorm statistics away from 0 / 1, so inference
    // really depends on the moving statistics (and a batch-statistics bug would show).
    for (let i = 0; i < 3; i++) tf.tidy(() => void model.forward(toImages(crops(6, S, 100 + i), S), { training: true }, { trust: 0.5 }));
    await saveArbex(dir, model);
  });

  after(async () => {
    model.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  test('forward returns the head outputs for images', () => {
    tf.tidy(() => {
      const out = model.forward(toImages(crops(3, S, 1), S));
      assert.deepEqual(out.primary.shape, [3, 4]);
      assert.deepEqual(out.corrected.shape, [3, 4]);
      assert.deepEqual(out.anchorSim!.shape, [3, 4, 3]);
      assert.deepEqual(out.features.shape, [3, model.config.extractor.embedDim]);
    });
  });

  test('trains through wide attention windows (12x12 global window, batch 8)', () => {
    // The wasm backend once crashed ("memory access out of bounds") reducing the attention-bias
    // gradient [8, 1, 144, 144] over the batch axis; this is the demo model's shape.
    const wide = createArbex(createParams(2), validateArbexConfig({ ...CONFIG, extractor: { preset: 'lite', inputSize: 48, backboneSize: 48, fusion: { windows: [12, 6, 3] } }, head: { hidden: [16] } }));
    try {
      const vars = trainableVars(wide.store);
      const grads = tf.tidy(() => {
        const x = toImages(crops(8, 48, 9), 48);
        const { grads } = tf.variableGrads(() => tf.sum(tf.mul(wide.forward(x, { training: true }).corrected, tf.range(0, 4))) as tf.Scalar, vars);
        return Object.values(grads).map((g) => tf.sum(tf.abs(g)).dataSync()[0]!);
      });
      assert.equal(grads.length, vars.length);
      assert.ok(grads.every(Number.isFinite));
    } finally {
      wide.dispose();
    }
  });

  test('save / load round trip gives the same outputs', async () => {
    const loaded = await loadArbex(dir);
    try {
      assert.deepEqual(loaded.config, model.config);
      const x = toImages(crops(4, S, 2), S);
      const [a, b] = tf.tidy(() => [model.forward(x).corrected, loaded.forward(x).corrected]);
      assert.ok(maxDiff(Array.from(a.dataSync()), Array.from(b.dataSync())) === 0);
      tf.dispose([a, b, x]);
    } finally {
      loaded.dispose();
    }
  });

  describe('FaceModel', () => {
    let local: FaceModel;
    let pooled: FaceModel;
    before(async () => {
      local = await loadFaceModel(dir, { workers: 0 });
      pooled = await loadFaceModel(dir, { workers: 2 });
    });
    after(() => {
      local.dispose();
      pooled.dispose();
    });

    test('output schema', async () => {
      assert.equal(local.inputSize, S);
      assert.deepEqual([...local.classes], CLASSES);
      const out = await local.predict(crops(5, S, 3));
      assert.equal(out.length, 5);
      for (const p of out) {
        for (const dist of [p.primary, p.corrected, p.anchorSimilarity]) {
          assert.equal(dist.length, CLASSES.length);
          assert.ok(Math.abs(dist.reduce((a, b) => a + b, 0) - 1) < 1e-5);
          assert.ok(dist.every((v) => v >= 0 && v <= 1));
        }
        assert.ok(p.confidence >= -1e-6 && p.confidence <= 1 + 1e-6);
        assert.ok(p.primaryConfidence >= -1e-6 && p.primaryConfidence <= 1 + 1e-6);
        assert.equal(p.labelIndex, p.corrected.indexOf(Math.max(...p.corrected)));
        assert.equal(p.label, CLASSES[p.labelIndex]);
      }
      assert.deepEqual(await local.predict([]), []);
      await assert.rejects(local.predict([new Uint8Array(10)]), /crop 0: expected 40x40x3 = 4800 bytes, got 10/);
    });

    test('batch invariance: a face alone equals the same face in a mixed batch', async () => {
      const batch = crops(7, S, 4);
      const all = await local.predict(batch);
      for (const i of [0, 3, 6]) {
        const [alone] = await local.predict([batch[i]!]);
        assert.ok(maxDiff(alone!.corrected, all[i]!.corrected) < 1e-5);
        assert.ok(maxDiff(alone!.primary, all[i]!.primary) < 1e-5);
      }
    });

    test('in-process and worker-pool numbers agree', async () => {
      const batch = crops(5, S, 6);
      const [a, b] = [await local.predict(batch), await pooled.predict(batch)];
      for (let i = 0; i < batch.length; i++) {
        assert.ok(maxDiff(a[i]!.corrected, b[i]!.corrected) < 1e-5);
        assert.ok(maxDiff(a[i]!.primary, b[i]!.primary) < 1e-5);
        assert.ok(maxDiff(a[i]!.anchorSimilarity, b[i]!.anchorSimilarity) < 1e-5);
        assert.ok(Math.abs(a[i]!.confidence - b[i]!.confidence) < 1e-5);
        assert.equal(a[i]!.label, b[i]!.label);
      }
    });

    test('no tensors leak across predictions', async () => {
      const batch = crops(3, S, 7);
      await local.predict(batch);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) await local.predict(batch);
      assert.equal(tf.memory().numTensors, before);
    });
  });
});
