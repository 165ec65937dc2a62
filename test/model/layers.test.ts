/**
 * The closed-form BatchNorm and PReLU gradients (src/model/nn/fused.ts, used by the batchNorm and
 * prelu layers in training) against tfjs autodiff of the unfused ops on the reference cpu
 * backend, on wasm (the backend they are tuned for) and on cpu.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/index.js';
import { batchNormTraining, channelPrelu } from '../../src/model/nn/fused.js';
import { batchNorm, conv2d, prelu, sequential, INFER } from '../../src/model/nn/layers.js';
import { createParams, disposeParams, seededRandom } from '../../src/model/nn/params.js';
import { relError } from '../numeric.js';

function values(n: number, seed: number, scale = 1, offset = 0): Float32Array {
  const rng = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (rng() * 2 - 1) * scale + offset);
}

type Arrays = Float32Array[];

/** Runs `fn` (which builds its own tensors) on `backend` and returns its outputs as arrays. */
async function on(backend: string, fn: () => tf.Tensor[]): Promise<Arrays> {
  await tf.setBackend(backend);
  try {
    return tf.tidy(() => fn().map((t) => Float32Array.from(t.dataSync())));
  } finally {
    await tf.setBackend('wasm');
  }
}

function assertClose(label: string, got: Arrays, want: Arrays, tol = 1e-4): void {
  assert.equal(got.length, want.length);
  got.forEach((g, i) => {
    const err = relError(g, want[i]);
    assert.ok(err <= tol, `${label}: output ${i} relative error ${err}`);
  });
}

/** tfjs-core's own training BatchNorm: the formula the layer used before the closed form. */
function referenceBatchNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, x.shape.slice(0, -1).map((_, i) => i));
  return tf.batchNorm(x, mean, variance, beta, gamma, eps);
}

/**
 * Value and gradients of sum(w·f(x, p, q)) with respect to x, p, q: a loss whose output gradient
 * is a random tensor w rather than ones, so every term of the backward pass matters.
 */
function valueAndGrads(
  f: (x: tf.Tensor, p: tf.Tensor, q: tf.Tensor) => tf.Tensor,
  shape: number[],
  opts: { offset?: number; zeros?: boolean } = {},
): () => tf.Tensor[] {
  return () => {
    const c = shape[shape.length - 1];
    const n = shape.reduce((a, b) => a * b, 1);
    const xv = values(n, 1, 2, opts.offset ?? 0);
    // Exact zeros sit on PReLU's kink: the reference's mask x > 0 sends them to the alpha side.
    if (opts.zeros) for (let i = 0; i < n; i += 7) xv[i] = 0;
    const x = tf.tensor(xv, shape);
    const p = tf.tensor(values(c, 2, 0.5, 1), [c]);
    const q = tf.tensor(values(c, 3, 0.5), [c]);
    const w = tf.tensor(values(n, 4), shape);
    const loss = (a: tf.Tensor, b: tf.Tensor, d: tf.Tensor): tf.Scalar => tf.sum(tf.mul(f(a, b, d), w));
    const { value, grads } = tf.valueAndGrads(loss)([x, p, q]);
    return [value, tf.reshape(f(x, p, q), [-1]), ...grads];
  };
}

before(async () => {
  await initBackend('wasm', { log: false });
});

const BN_CASES: { label: string; shape: number[]; offset?: number }[] = [
  { label: 'NHWC', shape: [3, 5, 4, 6] },
  { label: 'NHWC, mean far from 0', shape: [2, 6, 5, 8], offset: 20 },
  { label: '[B, C]', shape: [7, 5] },
];

for (const { label, shape, offset } of BN_CASES) {
  test(`batchNormTraining value and gradients match tfjs autodiff (${label})`, async () => {
    const eps = 1e-3;
    const fused = valueAndGrads((x, g, b) => batchNormTraining(x, g, b, eps).y, shape, { offset });
    const want = await on('cpu', valueAndGrads((x, g, b) => referenceBatchNorm(x, g, b, eps), shape, { offset }));
    assertClose(`${label} on wasm`, await on('wasm', fused), want);
    assertClose(`${label} on cpu`, await on('cpu', fused), want);
  });
}

test('batchNormTraining returns the batch mean and biased variance', async () => {
  const got = await on('wasm', () => {
    const x = tf.tensor(values(4 * 3 * 5, 9, 3, 1), [4, 3, 5]);
    const { mean, variance } = batchNormTraining(x, tf.ones([5]), tf.zeros([5]), 1e-5);
    return [mean, variance];
  });
  const want = await on('cpu', () => {
    const { mean, variance } = tf.moments(tf.tensor(values(4 * 3 * 5, 9, 3, 1), [4, 3, 5]), [0, 1]);
    return [mean, variance];
  });
  assertClose('statistics', got, want, 1e-5);
});

for (const shape of [[2, 4, 3, 6], [9, 4]]) {
  test(`channelPrelu value and gradients match tfjs autodiff ([${shape}], zeros included)`, async () => {
    // The third input is unused: valueAndGrads differentiates three tensors.
    const fused = valueAndGrads((x, a, q) => tf.add(channelPrelu(x, tf.sub(a, 1)), tf.mul(q, 0)), shape, { zeros: true });
    const want = await on('cpu', valueAndGrads((x, a, q) => tf.add(tf.prelu(x, tf.sub(a, 1)), tf.mul(q, 0)), shape, { zeros: true }));
    assertClose(`[${shape}] on wasm`, await on('wasm', fused), want);
    assertClose(`[${shape}] on cpu`, await on('cpu', fused), want);
  });
}

/** conv -> batchNorm -> prelu, twice, built with the layers under test or with the reference ops. */
function network(reference: boolean): () => tf.Tensor[] {
  return () => {
    const store = createParams(5);
    const bn = (name: string, ch: number) => {
      const layer = batchNorm(store, name, ch);
      const gamma = store.vars.get(`${name}.gamma`)!;
      const beta = store.vars.get(`${name}.beta`)!;
      return reference ? (x: tf.Tensor) => referenceBatchNorm(x, gamma, beta, 1e-5) : layer;
    };
    const act = (name: string, ch: number) => {
      const layer = prelu(store, name, ch);
      const alpha = store.vars.get(`${name}.alpha`)!;
      return reference ? (x: tf.Tensor) => tf.prelu(x, alpha) : layer;
    };
    const model = sequential(
      conv2d(store, 'c1', { inCh: 3, outCh: 8, kernel: 3, stride: 2 }),
      bn('bn1', 8),
      act('p1', 8),
      conv2d(store, 'c2', { inCh: 8, outCh: 6, kernel: 1 }),
      bn('bn2', 6),
      act('p2', 6),
    );
    const x = tf.tensor4d(values(4 * 9 * 9 * 3, 6), [4, 9, 9, 3]);
    const w = tf.tensor(values(4 * 5 * 5 * 6, 7), [4, 5, 5, 6]);
    const vars = [...store.vars.values()].filter((v) => v.trainable);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(model(x, { training: true }), w)), vars);
    const out = [value, ...vars.map((v) => grads[v.name])];
    disposeParams(store);
    return out;
  };
}

test('a conv/batchNorm/prelu network has the reference gradients for every weight', async () => {
  const want = await on('cpu', network(true));
  assertClose('network on wasm', await on('wasm', network(false)), want);
  assertClose('network on cpu', await on('cpu', network(false)), want);
});

test('batchNorm layer: moving averages as before, inference path on the moving statistics', async () => {
  const run = (reference: boolean) => (): tf.Tensor[] => {
    const store = createParams(1);
    const layer = batchNorm(store, 'bn', 4, 0.8, 1e-3);
    const x = tf.tensor(values(6 * 4, 8, 2, 5), [6, 4]);
    const [mm, mv] = [store.vars.get('bn.movingMean')!, store.vars.get('bn.movingVar')!];
    const outs: tf.Tensor[] = [];
    for (let step = 0; step < 2; step++) {
      if (reference) {
        const { mean, variance } = tf.moments(x, [0]);
        mm.assign(tf.add(tf.mul(mm, 0.8), tf.mul(mean, 0.2)));
        mv.assign(tf.add(tf.mul(mv, 0.8), tf.mul(variance, 0.2)));
      } else {
        layer(x, { training: true });
      }
    }
    outs.push(tf.clone(mm), tf.clone(mv));
    const gamma = store.vars.get('bn.gamma')!;
    const beta = store.vars.get('bn.beta')!;
    outs.push(reference ? tf.batchNorm(x, mm, mv, beta, gamma, 1e-3) : layer(x, INFER));
    disposeParams(store);
    return outs;
  };
  assertClose('moving statistics and inference output', await on('wasm', run(false)), await on('cpu', run(true)), 1e-5);
});

test('training steps through the fused layers leak no tensors', () => {
  const store = createParams(3);
  const model = sequential(conv2d(store, 'c', { inCh: 2, outCh: 4, kernel: 3 }), batchNorm(store, 'bn', 4), prelu(store, 'p', 4));
  const vars = [...store.vars.values()].filter((v) => v.trainable);
  const optimizer = tf.train.sgd(0.01);
  const x = tf.tensor4d(values(2 * 6 * 6 * 2, 4), [2, 6, 6, 2]);
  const step = (): void => {
    optimizer.minimize(() => tf.mean(tf.square(model(x, { training: true }))) as tf.Scalar, false, vars);
  };
  step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) step();
  assert.equal(tf.memory().numTensors, before);
  optimizer.dispose();
  x.dispose();
  disposeParams(store);
});
