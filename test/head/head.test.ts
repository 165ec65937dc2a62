/** Behaviour of the head as a whole: batch invariance, no tensor leaks, K = 0, init, training. */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { maxAbsDiff } from '../numeric.js';
import { initBackend } from '../../src/backends/index.js';
import { addParam, createParams, setTrainable } from '../../src/model/nn/params.js';
import {
  createHead,
  createHeadTrainer,
  headLosses,
  learningRateAt,
  trustAt,
  validateHeadConfig,
  type HeadOutput,
} from '../../src/model/head/index.js';

before(async () => {
  await initBackend('wasm', { log: false });
});

const CLASSES = ['Neutral', 'Anger', 'Disgust', 'Fear', 'Happiness', 'Sadness', 'Surprise'];

function smallConfig(extra: Record<string, unknown> = {}) {
  return validateHeadConfig({
    classes: CLASSES,
    embedDim: 64,
    reduceDim: 32,
    hidden: [32, 16],
    anchorsPerClass: 4,
    attention: { tokens: 4, heads: 2 },
    ...extra,
  });
}

const labelsOf = (n: number) => Array.from({ length: n }, (_, i) => i % CLASSES.length);

describe('batch invariance', () => {
  test('a face gives the same outputs alone and inside a batch of 64 other faces', () => {
    const store = createParams(11);
    const head = createHead(store, smallConfig());
    const pool = tf.randomNormal([65, 64], 0, 1.5, 'float32', 2) as tf.Tensor2D;
    head.initAnchorsFromMeans(pool, labelsOf(65));
    // A few training steps so BatchNorm's moving statistics are not the identity.
    const trainer = createHeadTrainer(head, { stepsPerEpoch: 5, totalSteps: 5, learningRate: 1e-2 });
    for (let i = 0; i < 5; i++) trainer.step(pool, labelsOf(65));
    trainer.dispose();

    tf.tidy(() => {
      const face = pool.slice([17, 0], [1, 64]);
      const alone = head.forward(face, { training: false });
      const batch = head.forward(pool, { training: false });
      const keys: (keyof HeadOutput)[] = [
        'features', 'logits', 'primary', 'confidencePrimary', 'distances', 'anchorSim', 'tg', 'ta', 't',
        'corrected', 'confidence',
      ];
      for (const key of keys) {
        const a = alone[key]!;
        const b = batch[key]!.slice(17, 1);
        const diff = maxAbsDiff(a, b);
        assert.ok(diff <= 1e-5, `${key}: max abs diff ${diff}`);
      }
    });
    pool.dispose();
  });
});

describe('no tensor leaks', () => {
  test('100 inference calls (tidy forward and predict) leave the tensor count unchanged', async () => {
    const store = createParams(12);
    const head = createHead(store, smallConfig());
    const e = tf.randomNormal([8, 64]) as tf.Tensor2D;
    await head.predict(e); // first call may create backend-side constants
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) tf.tidy(() => head.forward(e, { training: false }).corrected.dataSync());
    for (let i = 0; i < 50; i++) await head.predict(e);
    assert.equal(tf.memory().numTensors, before);
    e.dispose();
  });

  test('20 training steps leave the tensor count unchanged, and dispose() frees the optimizer', () => {
    const store = createParams(13);
    const head = createHead(store, smallConfig());
    const e = tf.randomNormal([16, 64]) as tf.Tensor2D;
    const y = tf.tensor1d(labelsOf(16), 'int32');
    const start = tf.memory().numTensors;
    const trainer = createHeadTrainer(head, { stepsPerEpoch: 4, totalSteps: 21 });
    trainer.step(e, y); // creates Adam's moment variables
    const afterFirst = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) trainer.step(e, labelsOf(16));
    assert.equal(tf.memory().numTensors, afterFirst);
    trainer.dispose();
    assert.equal(tf.memory().numTensors, start);
    tf.dispose([e, y]);
  });
});

describe('K = 0 (no anchor correction)', () => {
  test('t = t_a, no anchor outputs, anchor and center losses are 0, training still works', async () => {
    const store = createParams(14);
    const head = createHead(store, smallConfig({ anchorsPerClass: 0 }));
    const e = tf.randomNormal([6, 64]) as tf.Tensor2D;
    tf.tidy(() => {
      const out = head.forward(e, { training: false });
      assert.equal(out.tg, null);
      assert.equal(out.distances, null);
      assert.equal(out.anchorSim, null);
      assert.equal(maxAbsDiff(out.t, out.ta), 0);
      const l = headLosses(head.config, head.anchors, out, tf.tensor1d(labelsOf(6), 'int32'), 1);
      assert.equal(l.anchor.dataSync()[0], 0);
      assert.equal(l.center.dataSync()[0], 0);
      assert.ok(Math.abs(l.total.dataSync()[0]! - l.classDistribution.dataSync()[0]!) < 1e-7);
    });
    const [face] = await head.predict(e);
    assert.deepEqual(face!.anchorSimilarity, []);
    assert.equal(face!.corrected.length, CLASSES.length);
    const trainer = createHeadTrainer(head, { stepsPerEpoch: 1, totalSteps: 2 });
    const r = trainer.step(e, labelsOf(6));
    assert.ok(Number.isFinite(r.total) && r.anchor === 0 && r.center === 0);
    trainer.dispose();
    e.dispose();
  });
});

describe('parameters and init', () => {
  test('a seeded head is identical whatever was created in the store before it', () => {
    const a = createParams(1);
    const b = createParams(99);
    addParam(b, 'extractor.something', tf.randomNormal([10, 10]));
    const ha = createHead(a, smallConfig(), { seed: 7 });
    createHead(b, smallConfig(), { seed: 7 });
    for (const [name, v] of a.vars) {
      assert.equal(maxAbsDiff(v, b.vars.get(name)!), 0, name);
    }
    // Random anchors are not all equal (equal anchors would get no anchor-loss gradient).
    const spread = tf.tidy(() => tf.moments(ha.anchors.reshape([-1, 32]), 0).variance.mean().dataSync()[0]!);
    assert.ok(spread > 0.5, `anchor variance ${spread}`);
  });

  test('initAnchorsFromMeans puts each class’s K distinct anchors next to its reduced-feature mean', () => {
    const store = createParams(15);
    const head = createHead(store, smallConfig());
    const n = 140;
    const y = labelsOf(n);
    // Class c sits at 3 on coordinate c, unit noise elsewhere.
    const e = tf.tidy(() => tf.add(tf.randomNormal([n, 64], 0, 1, 'float32', 4), tf.mul(tf.oneHot(y, 64), 3)));
    head.initAnchorsFromMeans(e, y);
    const f = tf.tidy(() => head.forward(e, { training: false }).features.arraySync()) as number[][];
    const anchors = head.anchors.arraySync() as number[][][];
    for (let c = 0; c < CLASSES.length; c++) {
      const rows = f.filter((_, i) => y[i] === c);
      const mean = rows[0]!.map((_, k) => rows.reduce((s, r) => s + r[k]!, 0) / rows.length);
      const spread = Math.sqrt(rows.reduce((s, r) => s + r.reduce((t, x, k) => t + (x - mean[k]!) ** 2, 0), 0) / rows.length);
      for (const a of anchors[c]!) {
        const dist = Math.hypot(...a.map((x, k) => x - mean[k]!));
        assert.ok(dist < 0.3 * spread, `class ${c}: anchor ${dist} from the mean (spread ${spread})`);
      }
      assert.ok(Math.hypot(...anchors[c]![0]!.map((x, k) => x - anchors[c]![1]![k]!)) > 0, 'distinct anchors');
    }
    e.dispose();
  });

  test('forward rejects embeddings of the wrong width and trust outside [0, 1]', () => {
    const head = createHead(createParams(16), smallConfig());
    const wrong = tf.zeros([2, 63]);
    assert.throws(() => head.forward(wrong, { training: false }), /expected embeddings of shape \[B, 64\] \(got \[2, 63\]\)/);
    wrong.dispose();
    const e = tf.zeros([2, 64]);
    assert.throws(() => head.forward(e, { training: false }, { trust: 1.5 }), /trust must be in \[0, 1\]/);
    e.dispose();
  });
});

describe('training step', () => {
  test('schedules: lr₀·γ^epoch and τ from 0 to 1 over the run', () => {
    assert.equal(learningRateAt(0, { learningRate: 3e-4, decay: 0.995 }), 3e-4);
    assert.ok(Math.abs(learningRateAt(3, { learningRate: 3e-4, decay: 0.995 }) - 3e-4 * 0.995 ** 3) < 1e-15);
    assert.deepEqual([0, 1, 2, 3, 4].map((s) => trustAt(s, 5)), [0, 0.25, 0.5, 0.75, 1]);
  });

  test('the trainer applies the schedules and updates anchors, attention, MLP and BN statistics, not frozen weights', () => {
    const store = createParams(17);
    const head = createHead(store, smallConfig());
    setTrainable(store, 'head.reduce', false);
    const snapshot = () => new Map([...store.vars].map(([k, v]) => [k, v.arraySync()]));
    const e = tf.randomNormal([21, 64]) as tf.Tensor2D;
    const was = snapshot();
    const trainer = createHeadTrainer(head, { stepsPerEpoch: 2, totalSteps: 5 });
    const steps = [0, 1, 2, 3, 4].map(() => trainer.step(e, labelsOf(21)));
    trainer.dispose();
    assert.deepEqual(steps.map((s) => s.trust), [0, 0.25, 0.5, 0.75, 1]);
    assert.deepEqual(steps.map((s) => s.learningRate), [3e-4, 3e-4, 3e-4 * 0.995, 3e-4 * 0.995, 3e-4 * 0.995 ** 2]);
    assert.ok(steps.every((s) => [s.total, s.classDistribution, s.anchor, s.center].every(Number.isFinite)));
    const now = snapshot();
    const changed = (name: string) => JSON.stringify(was.get(name)) !== JSON.stringify(now.get(name));
    for (const name of ['head.anchors', 'head.attn.q.weight', 'head.attn.position', 'head.mlp.0.linear.weight', 'head.mlp.out.bias', 'head.mlp.1.bn.movingMean']) {
      assert.ok(changed(name), `${name} should change`);
    }
    assert.ok(!changed('head.reduce.weight'), 'frozen reduction must not change');
    e.dispose();
  });
});
