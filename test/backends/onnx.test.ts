/**
 * The ONNX Runtime engine of the cnn extractor answers what tfjs answers: embeddings and the
 * head's distributions of weights/fer on the parity images and on random crops, a random-weight
 * cnn without the mirror (odd input side, non-trivial BatchNorm statistics), in this thread and in
 * a worker thread; no tfjs tensor is left behind per call; the engine choice follows the setting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/index.js';
import { chooseEngine, createOnnxEngine, encodeOnnxModel } from '../../src/backends/onnx.js';
import type { Batch } from '../../src/backends/worker-pool.js';
import { readSettings } from '../../src/env.js';
import { createArbex, createModelRunner, loadArbex, predictBatches, validateArbexConfig, type PredictionBatches } from '../../src/model/arbex.js';
import { cnnGraph } from '../../src/model/extractor/cnn-graph.js';
import type { CnnConfig } from '../../src/model/extractor/index.js';
import { loadFaceModel } from '../../src/model/face-model.js';
import { createParams } from '../../src/model/nn/params.js';

await initBackend(undefined, { log: false });
const FER_DIR = new URL('../../weights/fer', import.meta.url).pathname;
const TOL = 1e-5;

function randomBatch(n: number, side: number, seed: number): Batch {
  const data = new Float32Array(n * side * side * 3);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32;
  }
  return { data, shape: [n, side, side, 3] };
}

async function parityBatch(): Promise<Batch> {
  const ref = JSON.parse(await readFile(new URL('../extractor/fixtures/fer-parity.json', import.meta.url), 'utf8')) as { pixels: number[][] };
  const n = ref.pixels.length;
  const data = new Float32Array(n * 48 * 48 * 3);
  ref.pixels.forEach((img, b) => img.forEach((v, i) => data.fill(v / 255, (b * 2304 + i) * 3, (b * 2304 + i) * 3 + 3)));
  return { data, shape: [n, 48, 48, 3] };
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function maxBatchDiff(a: PredictionBatches, b: PredictionBatches): number {
  let m = 0;
  for (const key of Object.keys(a) as (keyof PredictionBatches)[]) {
    assert.deepEqual(a[key].shape, b[key].shape, key);
    m = Math.max(m, maxAbs(a[key].data, b[key].data));
  }
  return m;
}

test('the ModelProto writer produces a graph onnxruntime accepts, with int64 and float attributes', async () => {
  const bytes = encodeOnnxModel({
    name: 'tiny',
    opset: 17,
    input: { name: 'x', dims: ['batch', 3] },
    output: { name: 'y', dims: ['batch', 3] },
    nodes: [
      { op: 'LeakyRelu', inputs: ['x'], outputs: ['a'], attrs: { alpha: 0.25 } },
      { op: 'Slice', inputs: ['a', 'starts', 'ends', 'axes', 'steps'], outputs: ['y'] },
    ],
    initializers: [
      { name: 'starts', dims: [1], data: BigInt64Array.of(-1n) },
      { name: 'ends', dims: [1], data: BigInt64Array.of(-(2n ** 63n)) },
      { name: 'axes', dims: [1], data: BigInt64Array.of(1n) },
      { name: 'steps', dims: [1], data: BigInt64Array.of(-1n) },
    ],
  });
  assert.ok(bytes.length > 50);
  const engine = await createOnnxEngine({ name: 'tiny', opset: 17, input: { name: 'x', dims: ['batch', 3] }, output: { name: 'y', dims: ['batch', 3] }, nodes: [], initializers: [] }).catch((e: Error) => e);
  assert.ok(engine instanceof Error, 'a graph whose output nothing writes is refused');
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, -2, 3, -4, 5, 6), [2, 3]) });
  assert.deepEqual(Array.from(out.y!.data as Float32Array), [3, -0.5, 1, 6, 5, -1]);
  await session.release();
});

test('weights/fer: ONNX and tfjs embeddings and distributions agree on the parity images and random crops', async () => {
  const model = await loadArbex(FER_DIR);
  const cfg = model.config.extractor as CnnConfig;
  assert.equal(cfg.kind, 'cnn');
  assert.equal(cfg.mirror, 'average');
  const onnx = await createOnnxEngine(cnnGraph(model.store, cfg, 'extractor'));
  const runner = await createModelRunner(model, 'onnx');
  assert.equal(runner.engine, 'onnx');
  const worst = { embedding: 0, outputs: 0 };
  for (const input of [await parityBatch(), randomBatch(1, 48, 1), randomBatch(3, 48, 2), randomBatch(8, 48, 3)]) {
    const want = tf.tidy(() => model.embed(tf.tensor4d(input.data, input.shape as [number, number, number, number])));
    const got = await onnx.run(input);
    assert.deepEqual(got.shape, want.shape);
    worst.embedding = Math.max(worst.embedding, maxAbs(got.data, want.dataSync()));
    want.dispose();
    worst.outputs = Math.max(worst.outputs, maxBatchDiff(await runner.predict(input), predictBatches(model, input)));
  }
  console.log(`weights/fer ONNX vs tfjs: max |Δ embedding| ${worst.embedding.toExponential(2)}, max |Δ distribution/confidence| ${worst.outputs.toExponential(2)}`);
  assert.ok(worst.embedding <= TOL, `embeddings differ by ${worst.embedding}`);
  assert.ok(worst.outputs <= TOL, `head outputs differ by ${worst.outputs}`);

  // The head's tfjs tensors are all freed: numTensors does not grow over a loop of calls.
  const input = randomBatch(3, 48, 4);
  await runner.predict(input);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) await runner.predict(input);
  assert.equal(tf.memory().numTensors, before);
  await runner.dispose();
  await onnx.dispose();
  model.dispose();
});

test('a random-weight cnn without the mirror, odd input side and non-trivial BatchNorm statistics', async () => {
  const config = validateArbexConfig({
    classes: ['a', 'b', 'c'],
    extractor: { kind: 'cnn', inputSize: 37, greyMean: 0.4, greyStd: 0.3, stemWidth: 8, widths: [8, 12, 16], depths: [1, 1, 2], embedDim: 16, frozen: { image: true }, mirror: 'none' },
    head: { hidden: [16], anchorsPerClass: 2, attention: { tokens: 2, heads: 2 } },
  });
  const model = createArbex(createParams(3), config, { seed: 3 });
  let s = 7;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (const [name, v] of model.store.vars) {
    if (!name.startsWith('extractor.')) continue;
    if (/\.(gamma|movingVar)$/.test(name)) v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => 0.5 + rand()), v.shape));
    else if (/\.(beta|movingMean)$/.test(name)) v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => rand() - 0.5), v.shape));
  }
  const runner = await createModelRunner(model, 'onnx');
  for (const input of [randomBatch(1, 37, 5), randomBatch(4, 37, 6)]) {
    const diff = maxBatchDiff(await runner.predict(input), predictBatches(model, input));
    assert.ok(diff <= TOL, `outputs differ by ${diff}`);
  }
  await runner.dispose();
  model.dispose();
});

test('loadFaceModel: onnx by default for weights/fer, in this thread and in a worker, same predictions as tfjs', async () => {
  const crops = Array.from({ length: 3 }, (_, i) => Uint8Array.from(randomBatch(1, 48, 10 + i).data, (v) => Math.round(v * 255)));
  const tfjs = await loadFaceModel(FER_DIR, { engine: 'tfjs' });
  const inThread = await loadFaceModel(FER_DIR, { log: false });
  const inWorker = await loadFaceModel(FER_DIR, { workers: 1, engine: 'onnx' });
  try {
    assert.equal(tfjs.engine, 'tfjs');
    assert.equal(inThread.engine, 'onnx');
    assert.equal(inWorker.engine, 'onnx');
    const want = await tfjs.predict(crops);
    for (const got of [await inThread.predict(crops), await inWorker.predict(crops)]) {
      got.forEach((p, i) => {
        assert.equal(p.label, want[i]!.label);
        assert.ok(maxAbs(p.corrected, want[i]!.corrected) <= TOL);
        assert.ok(Math.abs(p.confidence - want[i]!.confidence) <= TOL);
      });
    }
  } finally {
    tfjs.dispose();
    inThread.dispose();
    inWorker.dispose();
  }
});

test('engine choice: ARBEX_ENGINE forces one; a tfjs-only extractor stays on tfjs unless onnx is forced', async () => {
  assert.equal(readSettings({ ARBEX_ENGINE: 'tfjs' }).engine, 'tfjs');
  assert.equal(readSettings({ ARBEX_ENGINE: 'onnx' }).engine, 'onnx');
  assert.equal(readSettings({}).engine, undefined);
  assert.throws(() => readSettings({ ARBEX_ENGINE: 'gpu' }), /ARBEX_ENGINE must be one of onnx, tfjs/);
  assert.deepEqual(await chooseEngine('tfjs'), { name: 'tfjs' });
  assert.equal((await chooseEngine(undefined, { log: false })).name, 'onnx');
  const poster = createArbex(createParams(1), validateArbexConfig({ classes: ['a', 'b'], extractor: 'lite' }));
  await assert.rejects(createModelRunner(poster, 'onnx'), /runs only the "cnn" extractor/);
  poster.dispose();
});
