/**
 * Every ARBEx formula against numbers worked out by hand (the derivations are in the comments;
 * the literals were computed independently of this code, to double precision).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/index.js';
import { createParams, type ParamStore } from '../../src/model/nn/params.js';
import {
  anchorLoss,
  centerLoss,
  classDistributionLoss,
  confidence,
  createHead,
  headLosses,
  validateHeadConfig,
  type Head,
} from '../../src/model/head/index.js';

before(async () => {
  await initBackend('wasm', { log: false });
});

function close(actual: ArrayLike<number>, expected: number[], tol = 1e-5, what = ''): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

const read = (t: tf.Tensor | null) => Array.from(t!.dataSync());

describe('confidence c(p) = 1 − H(p)', () => {
  test('uniform → 0, one-hot → 1 (0·log 0 = 0, no NaN), and intermediate values', () => {
    const c = tf.tidy(() =>
      read(confidence(tf.tensor2d([[0.25, 0.25, 0.25, 0.25], [0, 0, 1, 0], [0.5, 0.5, 0, 0]]), 1e-12)),
    );
    // [.5, .5, 0, 0]: H = log 2 / log 4 = 0.5.
    close(c, [0, 1, 0.5], 1e-6, 'c');
    // [.7, .2, .1]: H = −(.7 ln .7 + .2 ln .2 + .1 ln .1) / ln 3 = 0.729847, c = 0.270153.
    close(tf.tidy(() => read(confidence(tf.tensor1d([0.7, 0.2, 0.1]), 1e-12))), [0.2701533], 1e-6, 'c3');
  });

  test('its gradient is finite at a one-hot distribution', () => {
    const g = tf.tidy(() => read(tf.grad((p: tf.Tensor) => tf.sum(confidence(p, 1e-12)))(tf.tensor1d([1, 0, 0]))));
    assert.ok(g.every(Number.isFinite), `gradient ${g}`);
  });
});

/**
 * The worked example: L = 2, D = 2, K = 2, no hidden layer, identity output layer, attention whose
 * projection is zero with bias [0, ln 3], so every intermediate has a closed form.
 */
function workedHead(): { store: ParamStore; head: Head } {
  const store = createParams(1);
  const config = validateHeadConfig({
    classes: ['a', 'b'],
    embedDim: 2,
    hidden: [],
    anchorsPerClass: 2,
    attention: { tokens: 1, heads: 1 },
    loss: { lambdaCd: 1, lambdaA: 2, lambdaC: 3 },
  });
  const head = createHead(store, config);
  const set = (name: string, value: tf.Tensor) => {
    store.vars.get(name)!.assign(value);
    value.dispose();
  };
  set('head.mlp.out.weight', tf.tensor2d([[1, 0], [0, 1]]));
  set('head.mlp.out.bias', tf.tensor1d([0, 0]));
  set('head.attn.project.weight', tf.zeros([2, 2]));
  set('head.attn.project.bias', tf.tensor1d([0, Math.log(3)]));
  // a00 = e (d² = 0), a01: d² = 3² + 4² = 25; a10: d² = 3² = 9; a11: d² = 3² + 4² = 25.
  set('head.anchors', tf.tensor3d([[[1, 2], [4, 6]], [[1, 5], [-2, 6]]]));
  return { store, head };
}

describe('head forward on the worked example (e = [1, 2])', () => {
  test('l, c(l), d, s, t_g, t_a, t, p_final, c(p_final) and p at τ = 0.5', () => {
    const { head } = workedHead();
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const e = tf.tensor2d([[1, 2]]);
      const out = head.forward(e, { training: false });
      // z = [1, 2]; l = [1, e] / (1 + e).
      close(read(out.logits), [1, 2], 1e-6, 'z');
      close(read(out.primary), [0.26894142, 0.73105858], 1e-6, 'l');
      // H(l) = 0.5822021 / ln 2 = 0.8399415 → c = 0.1600585.
      close(read(out.confidencePrimary), [0.16005846], 1e-5, 'c(l)');
      // d = sqrt(d² + 1e-6).
      close(read(out.distances), [0.001, 5.0000001, 3.00000017, 5.0000001], 1e-5, 'd');
      // s = exp(−d) / Σ: exp(−.001) = .9990005, exp(−5) = .0067379, exp(−3) = .0497871, Σ = 1.0622585.
      close(read(out.anchorSim), [0.94044514, 0.00634301, 0.04686884, 0.00634301], 1e-5, 's');
      close(read(out.tg), [0.94678815, 0.05321185], 1e-5, 't_g');
      close(read(out.ta), [0.25, 0.75], 1e-6, 't_a');
      // c(t_g) = 0.7001129, c(t_a) = 0.1887219; t = (c_g t_g + c_a t_a) / (c_g + c_a + 1e-8).
      close(read(out.t), [0.79884257, 0.20115742], 1e-5, 't');
      // p_final = c(l)·l + (1 − c(l))·t.
      close(read(out.corrected), [0.71402741, 0.28597258], 1e-5, 'p_final');
      close(read(out.confidence), [0.13653821], 1e-5, 'c(p_final)');
      close(read(out.trained), read(out.corrected), 0, 'p at τ = 1');
      // No hidden layer, so training mode has no dropout: p = 0.5·l + 0.5·p_final.
      const half = head.forward(e, { training: true }, { trust: 0.5 });
      close(read(half.trained), [0.49148441, 0.50851558], 1e-5, 'p at τ = 0.5');
      for (const dist of [out.primary, out.tg, out.ta, out.t, out.corrected, half.trained]) {
        close([read(dist).reduce((a, b) => a + b, 0)], [1], 1e-6, 'sum');
      }
    });
    assert.equal(tf.memory().numTensors, before, 'forward inside tidy leaves nothing behind');
  });

  test('predict returns the same numbers as plain arrays, label = argmax p_final', async () => {
    const { head } = workedHead();
    const e = tf.tensor2d([[1, 2]]);
    const [face] = await head.predict(e);
    e.dispose();
    close(face!.primary, [0.26894142, 0.73105858], 1e-6, 'primary');
    close(face!.corrected, [0.71402741, 0.28597258], 1e-5, 'corrected');
    close(face!.anchorSimilarity, [0.94678815, 0.05321185], 1e-5, 'anchorSimilarity');
    close([face!.primaryConfidence, face!.confidence], [0.16005846, 0.13653821], 1e-5, 'confidences');
    // The correction flips the decision: l prefers b, the anchors (and so p_final) prefer a.
    assert.equal(face!.labelIndex, 0);
    assert.equal(face!.label, 'a');
  });

  test('total loss = λ_cd·L_cd + τ·(λ_a·L_a + λ_c·L_c) with y = b, τ = 0.5, λ = (1, 2, 3)', () => {
    const { head } = workedHead();
    const values = tf.tidy(() => {
      const out = head.forward(tf.tensor2d([[1, 2]]), { training: true }, { trust: 0.5 });
      const l = headLosses(head.config, head.anchors, out, tf.tensor1d([1], 'int32'), 0.5);
      return [l.classDistribution, l.anchor, l.center, l.total].map((t) => t.dataSync()[0]!);
    });
    // L_cd = −(0.055 ln 0.4914844 + 0.945 ln 0.5085156) (smoothing 0.11 over 2 classes).
    // L_a: vec(A_0) − vec(A_1) = [0, −3, 6, 0], ||·||² = 45, two ordered pairs → −90 / (√2 · 2²).
    // L_c: nearest own anchor d = 3.00000017, × c(l) = 0.1600585, / √2.
    // total = 0.6781330 + 0.5 · (2 · −15.9099026 + 3 · 0.3395353).
    close(values, [0.67813303, -15.90990258, 0.33953529, -14.72246661], 1e-4, 'losses');
  });
});

describe('losses on hand examples', () => {
  test('class-distribution NLL with label smoothing, unweighted and class-weighted', () => {
    const [plain, single, weighted] = tf.tidy(() => {
      const p = tf.tensor2d([[0.25, 0.75], [0.6, 0.4]]);
      const y = tf.tensor1d([1, 0], 'int32');
      return [
        classDistributionLoss(p, y, { labelSmoothing: 0.11, logEps: 1e-12 }),
        classDistributionLoss(p.slice([0, 0], [1, 2]), y.slice([0], [1]), { labelSmoothing: 0.11, logEps: 1e-12 }),
        classDistributionLoss(p, y, { labelSmoothing: 0.11, classWeights: [2, 1], logEps: 1e-12 }),
      ].map((t) => t.dataSync()[0]!);
    });
    // Sample 1: −(0.055 ln .25 + 0.945 ln .75) = 0.3481057; sample 2: −(0.945 ln .6 + 0.055 ln .4) = 0.5331262.
    close([single!], [0.34810575], 1e-5, 'single');
    close([plain!], [0.44061598], 1e-5, 'mean');
    // Weighted mean (1 · 0.3481057 + 2 · 0.5331262) / 3.
    close([weighted!], [0.47145272], 1e-5, 'weighted');
  });

  test('anchor loss, its cap, and no gradient through a capped pair', () => {
    // L = 3, K = 2, D = 2. Squared distances of vec(A_i): (0,1) 25, (0,2) 8, (1,2) 33.
    const A = tf.tensor3d([[[0, 0], [1, 0]], [[0, 3], [1, 4]], [[2, 0], [3, 0]]]);
    const [free, capped] = tf.tidy(() => [anchorLoss(A, 1e6), anchorLoss(A, 10)].map((t) => t.dataSync()[0]!));
    close([free!], [-23.33452378], 1e-4, 'uncapped: −2·(25 + 8 + 33) / (√2·4)');
    close([capped!], [-16.97056275], 1e-4, 'cap K·m = 20: −2·(20 + 8 + 20) / (√2·4)');
    // Only the (0, 2) pair is below the cap: dL/dA_0 = −(2·2 / (√2·4))·(A_0 − A_2) = [√2, 0, √2, 0].
    const g = tf.tidy(() => read(tf.grad((a: tf.Tensor) => anchorLoss(a, 10))(A)));
    close(g, [Math.SQRT2, 0, Math.SQRT2, 0, 0, 0, 0, 0, -Math.SQRT2, 0, -Math.SQRT2, 0], 1e-5, 'grad');
    A.dispose();
  });

  test('center loss and its stop-gradient on c(l)', () => {
    const d = tf.tensor3d([[[2, 1], [0.5, 3]], [[4, 4], [3, 2.5]]]);
    const y = tf.tensor1d([0, 1], 'int32');
    const c = tf.tensor1d([0.5, 0.8]);
    // mean(min(2, 1)·0.5, min(3, 2.5)·0.8) / √4 = (0.5 + 2.0) / 2 / 2.
    close([tf.tidy(() => centerLoss(d, y, c, 4).dataSync()[0]!)], [0.625], 1e-6, 'L_c');
    const [gd, gc] = tf.tidy(() =>
      tf.grads((dd: tf.Tensor, cc: tf.Tensor) => centerLoss(dd as tf.Tensor3D, y, cc as tf.Tensor1D, 4))([d, c]).map(read),
    );
    // Only each sample's nearest own anchor gets gradient c_b / (B·√D).
    close(gd!, [0, 0.125, 0, 0, 0, 0, 0, 0.2], 1e-6, 'dL/dd');
    close(gc!, [0, 0], 0, 'dL/dc (stop-gradient)');
    tf.dispose([d, y, c]);
  });
});

describe('distances on a random example', () => {
  test('match a direct sum of squares computed in JS', () => {
    const store = createParams(3);
    const config = validateHeadConfig({ classes: ['a', 'b', 'c'], embedDim: 16, hidden: [8], anchorsPerClass: 3, attention: { tokens: 4, heads: 2 } });
    const head = createHead(store, config);
    const e = tf.randomNormal([4, 16], 0, 2, 'float32', 5);
    const d = tf.tidy(() => read(head.forward(e, { training: false }).distances));
    const ev = e.arraySync() as number[][];
    const av = (head.anchors.arraySync() as number[][][]).flat();
    const expected = ev.flatMap((row) => av.map((a) => Math.sqrt(a.reduce((s, x, k) => s + (row[k]! - x) ** 2, 0) + 1e-6)));
    close(d, expected, 1e-4, 'd');
    e.dispose();
  });
});
