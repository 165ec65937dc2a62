/**
 * The feature cache of a frozen backbone: hits never call the extractor, any change to the
 * extractor, the preprocessing or the data is a miss, damaged files are rebuilt, and training on
 * cached features equals training through the extractor.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/index.js';
import { createArbex, loadArbex, validateArbexConfig, type Arbex } from '../../src/model/arbex.js';
import { createAugmenter, type DataRecord, type Dataset } from '../../src/model/data/index.js';
import { generateDataset } from '../../src/model/data/synth/index.js';
import { INFER } from '../../src/model/nn/layers.js';
import { createParams } from '../../src/model/nn/params.js';
import {
  createProgress,
  openDataSpec,
  openFeatureCache,
  parseDataSpec,
  trainArbex,
  validateTrainConfig,
  type FeatureCache,
} from '../../src/model/train/index.js';

import { collect } from '../support/async.js';
import { CLASSES, quietTraining, tinyModelJson } from '../support/train.js';

await initBackend(undefined, { log: false });

const MODEL = tinyModelJson({ hidden: [16], dropout: 0.3 });
const FLIP_ONLY = { resize: 40, flip: 0.5, rotate: 0, brightness: 0, contrast: 0, saturation: 0, noise: 0 };

/** The model with embed calls counted. */
function counted(model: Arbex): { model: Arbex; calls: () => number } {
  let calls = 0;
  return {
    model: { ...model, embed: (x, ctx) => (calls++, model.embed(x, ctx)) },
    calls: () => calls,
  };
}

const all = (dataset: Dataset): Promise<DataRecord[]> => collect(dataset.records());

describe('feature cache (tiny preset)', () => {
  let dir: string;
  let train: Dataset;
  let val: Dataset;
  let model: Arbex;
  const lines: string[] = [];
  const log = (line: string) => lines.push(line);
  const open = (m: Pick<Arbex, 'embed' | 'config' | 'store'>, dataset = train, name = 'train') => openFeatureCache({ model: m, dataset, dir: path.join(dir, 'cache'), batchSize: 8, name, log });

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'arbex-cache-'));
    await generateDataset({ out: path.join(dir, 'data'), identities: 4, imagesPerClass: 4, videos: 0, size: 44, seed: 3, splits: { train: 0.5, val: 0.5, test: 0 } });
    train = await openDataSpec(parseDataSpec(`folder:${dir}/data/train,group=prefix`), CLASSES);
    val = await openDataSpec(parseDataSpec(`folder:${dir}/data/val`), CLASSES);
    assert.ok(train.counts.records >= 16 && val.counts.records >= 1);
    model = createArbex(createParams(1), validateArbexConfig(MODEL), { seed: 1 });
  });
  after(async () => {
    model.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  test('a miss embeds every image and its mirror once; the next open is a hit that never calls the extractor', async () => {
    const tensors = tf.memory().numTensors;
    const first = counted(model);
    const built = await open(first.model);
    assert.equal(built.hit, false);
    assert.ok(first.calls() > 0);
    assert.match(lines.at(-2)!, new RegExp(`^cache: miss ${built.key} train \\(${train.counts.records} images x 2 views, D 24\\)`));
    assert.match(lines.at(-1)!, /^cache: built [0-9a-f]{32} in [\d.]+ s/);

    const second = counted(model);
    const cached = await open(second.model);
    assert.equal(cached.hit, true);
    assert.equal(second.calls(), 0, 'a hit does not run the extractor');
    assert.equal(cached.key, built.key);
    assert.match(lines.at(-1)!, new RegExp(`^cache: hit ${built.key} train`));

    // The cached rows are the extractor's output on the evaluation pixels and on their mirror.
    const records = await all(train);
    assert.deepEqual(cached.gather(records), built.gather(records));
    const r = records[3]!;
    const S = model.config.extractor.inputSize;
    const pixels = createAugmenter({ size: S }).eval(await train.load(r, S));
    const [plain, mirror] = tf.tidy(() => {
      const x = tf.tensor4d(pixels, [1, S, S, 3]);
      return [model.embed(x, INFER), model.embed(tf.reverse(x, 2), INFER)].map((e) => Array.from(e.dataSync()));
    });
    const close = (a: ArrayLike<number>, b: number[]) => Array.from(a).every((v, i) => Math.abs(v - b[i]!) <= 1e-5);
    assert.ok(close(cached.gather([r]), plain!));
    assert.ok(close(cached.gather([r], [true]), mirror!));
    assert.throws(() => cached.gather([{ ...r, path: '/nowhere.png' }]), /is not one of the cached images/);
    assert.equal(tf.memory().numTensors, tensors, 'no tensor left behind');
  });

  test('a cache built in worker threads holds the embeddings built in this thread', async () => {
    const records = await all(train);
    const here = await open(model);
    const workers = await openFeatureCache({ model, dataset: train, dir: path.join(dir, 'cache-workers'), batchSize: 8, name: 'train', log, workers: 2 });
    assert.equal(workers.hit, false);
    assert.equal(workers.key, here.key);
    const mirrored = records.map((_, i) => i % 2 === 1);
    for (const m of [undefined, mirrored]) {
      const a = here.gather(records, m);
      const b = workers.gather(records, m);
      assert.ok(a.every((v, i) => Math.abs(v - b[i]!) <= 1e-5), 'worker and in-thread embeddings differ');
    }
  });

  test('the key changes with a backbone weight, a BatchNorm statistic, the inputSize, the crop template and an image file', async () => {
    const base = await open(model);
    const expectMiss = async (m: Pick<Arbex, 'embed' | 'config' | 'store'>, what: string, dataset = train): Promise<FeatureCache> => {
      const c = counted(m as Arbex);
      const cache = await open(c.model, dataset);
      assert.notEqual(cache.key, base.key, `${what}: same key`);
      assert.equal(cache.hit, false, `${what}: hit`);
      assert.ok(c.calls() > 0, `${what}: not recomputed`);
      return cache;
    };
    const nudge = async (name: string, what: string) => {
      const v = model.store.vars.get(name)!;
      const original = v.clone();
      tf.tidy(() => v.assign(tf.add(v, 1e-3)));
      await expectMiss(model, what);
      v.assign(original);
      original.dispose();
      assert.equal((await open(model)).hit, true, `${what}: restored weights hit again`);
    };
    const names = [...model.store.vars.keys()];
    await nudge(names.find((n) => n.startsWith('extractor.') && n.endsWith('.weight'))!, 'a weight');
    await nudge(names.find((n) => n.startsWith('extractor.') && n.endsWith('.movingMean'))!, 'a BatchNorm statistic');

    // The head is not part of the key.
    const head = model.store.vars.get('head.mlp.out.weight')!;
    tf.tidy(() => head.assign(tf.add(head, 1)));
    assert.equal((await open(model)).hit, true, 'a head change keeps the cache');

    const bigger = createArbex(createParams(1), validateArbexConfig({ ...MODEL, extractor: { preset: 'tiny', inputSize: 48 } }), { seed: 1 });
    try {
      await expectMiss(bigger, 'inputSize 48');
    } finally {
      bigger.dispose();
    }
    const template = [[0.3, 0.4], [0.7, 0.4], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]] as const;
    await expectMiss({ ...model, config: { ...model.config, crop: { template: template.map(([x, y]) => [x, y] as const) } } }, 'a crop template');

    // Another image under the same file name.
    const files = (await all(train)).map((r) => r.path);
    await copyFile(files[1]!, files[0]!);
    await expectMiss(model, 'a changed image file', await openDataSpec(parseDataSpec(`folder:${dir}/data/train,group=prefix`), CLASSES));
  });

  test('a truncated, corrupt or unreadable cache is detected and rebuilt, never used', async () => {
    const fresh = await open(model, val, 'val');
    const file = (name: string) => path.join(fresh.path, name);
    const rebuiltAfter = async (damage: () => Promise<void>, reason: RegExp) => {
      await damage();
      const c = counted(model);
      const cache = await open(c.model, val, 'val');
      assert.equal(cache.hit, false);
      assert.ok(c.calls() > 0);
      assert.match(lines.find((l) => l.startsWith(`cache: miss ${fresh.key}`) && reason.test(l)) ?? '', reason);
      lines.length = 0;
      assert.equal((await open(model, val, 'val')).hit, true, 'the rebuilt cache is used');
    };
    await rebuiltAfter(() => truncate(file('features.bin'), 100), /features\.bin has 100 bytes, expected \d+ \(truncated\?\)/);
    await rebuiltAfter(async () => {
      const bytes = await readFile(file('features.bin'));
      bytes[5] ^= 0xff;
      await writeFile(file('features.bin'), bytes);
    }, /does not match its SHA-256 \(corrupt\)/);
    await rebuiltAfter(() => writeFile(file('index.json'), '{"format": "arbex-feat'), /index\.json unreadable/);
    await rebuiltAfter(() => rm(file('features.bin')), /features\.bin unreadable \(ENOENT\)/);
    assert.deepEqual((await readdir(fresh.path)).sort(), ['features.bin', 'index.json'], 'no temporary file left');
  });

  test('training on cached features gives the head of training through the extractor (flip off and on)', async () => {
    for (const flip of [0, 0.5]) {
      const config = validateTrainConfig({ model: MODEL, epochs: 2, batchSize: 8, evalBatchSize: 16, perClass: 2, learningRate: 1e-3, freeze: 'backbone', augment: { ...FLIP_ONLY, flip }, seed: 4 });
      const quiet = quietTraining;
      const plain = path.join(dir, `plain-${flip}`);
      const cachedRun = path.join(dir, `cached-${flip}`);
      await trainArbex({ config, train, val, out: plain, ...quiet });
      const runLines: string[] = [];
      const tensors = tf.memory().numTensors;
      await trainArbex({ config, train, val, out: cachedRun, cache: path.join(dir, 'train-cache'), ...quiet, log: (l) => runLines.push(l) });
      assert.equal(tf.memory().numTensors, tensors);
      assert.ok(runLines.some((l) => /^cache: (hit|miss) [0-9a-f]{32} train/.test(l)) && runLines.some((l) => /^cache: (hit|miss) [0-9a-f]{32} val/.test(l)), runLines.join('\n'));

      const [a, b] = await Promise.all([loadArbex(path.join(plain, 'last')), loadArbex(path.join(cachedRun, 'last'))]);
      try {
        let worst = 0;
        for (const [name, v] of a.store.vars) {
          const p = v.dataSync();
          const q = b.store.vars.get(name)!.dataSync();
          for (let i = 0; i < p.length; i++) worst = Math.max(worst, Math.abs(p[i]! - q[i]!));
        }
        assert.ok(worst <= 1e-5, `flip ${flip}: weights differ by ${worst}`);
      } finally {
        a.dispose();
        b.dispose();
      }
      const metrics = async (out: string) => JSON.parse(await readFile(path.join(out, 'best', 'metrics.json'), 'utf8')).corrected.accuracy;
      assert.equal(await metrics(cachedRun), await metrics(plain), 'validation through the cache scores the same');
    }
  });

  test('pixel augmentations: training batches run the extractor (logged), validation and a second run still hit', async () => {
    const config = validateTrainConfig({ model: MODEL, epochs: 1, batchSize: 8, evalBatchSize: 16, perClass: 2, freeze: 'backbone', augment: { ...FLIP_ONLY, rotate: 5 }, seed: 4 });
    const runLines: string[] = [];
    const options = { config, train, val, cache: path.join(dir, 'train-cache'), log: (l: string) => runLines.push(l), progress: createProgress({ write: () => undefined }) };
    await trainArbex({ ...options, out: path.join(dir, 'rotate') });
    assert.ok(
      runLines.includes('cache: training batches run the extractor: augment rotate 5 changes pixels; only flip can be cached: give "augment": { "resize": 40, "rotate": 0, "brightness": 0, "contrast": 0, "saturation": 0, "noise": 0, "flip": ... } or false'),
      runLines.join('\n'),
    );
    assert.ok(runLines.some((l) => /^cache: hit [0-9a-f]{32} val/.test(l)), 'validation reads the cache built by the previous test');
    assert.ok(!runLines.some((l) => / train \(/.test(l)), 'no training cache is built');
  });
});

describe('feature cache (mirror-averaging cnn)', () => {
  const CNN = { kind: 'cnn', inputSize: 32, greyMean: 0.5, greyStd: 0.25, stemWidth: 8, widths: [8, 16], depths: [1, 1], embedDim: 16, frozen: { image: true }, mirror: 'average' };
  let dir: string;
  let train: Dataset;
  let model: Arbex;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'arbex-cache-cnn-'));
    await generateDataset({ out: path.join(dir, 'data'), identities: 2, imagesPerClass: 2, videos: 0, size: 40, seed: 5, splits: { train: 1, val: 0, test: 0 } });
    train = await openDataSpec(parseDataSpec(`folder:${dir}/data/train`), CLASSES);
    model = createArbex(createParams(2), validateArbexConfig({ ...MODEL, extractor: CNN }), { seed: 2 });
  });
  after(async () => {
    model.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  test('embeds each image once (its mirror has the same embedding), in this thread and in workers', async () => {
    let rows = 0;
    const countingModel = { ...model, embed: (x: tf.Tensor4D, ctx?: Parameters<Arbex['embed']>[1]) => ((rows += x.shape[0]), model.embed(x, ctx)) };
    const records = await all(train);
    const here = await openFeatureCache({ model: countingModel, dataset: train, dir: path.join(dir, 'a'), batchSize: 8, name: 'train', log: () => undefined });
    assert.equal(rows, records.length, 'one extractor row per image, not two');
    const workers = await openFeatureCache({ model, dataset: train, dir: path.join(dir, 'b'), batchSize: 8, name: 'train', log: () => undefined, workers: 1 });
    const flips = records.map(() => true);
    // The cached row is the (mirror-averaged) extractor's output on the evaluation pixels.
    const r = records[1]!;
    const pixels = createAugmenter({ size: 32 }).eval(await train.load(r, 32));
    const direct = tf.tidy(() => Array.from(model.embed(tf.tensor4d(pixels, [1, 32, 32, 3]), INFER).dataSync()));
    assert.ok(Array.from(here.gather([r], [true])).every((v, i) => Math.abs(v - direct[i]!) <= 1e-5));
    for (const cache of [here, workers]) {
      const a = cache.gather(records);
      const b = cache.gather(records, flips);
      assert.ok(a.every((v, i) => Math.abs(v - b[i]!) <= 1e-5), 'a face and its mirror differ under mirror averaging');
    }
    const x = here.gather(records);
    const y = workers.gather(records);
    assert.ok(x.every((v, i) => Math.abs(v - y[i]!) <= 1e-5), 'worker and in-thread embeddings differ');
    assert.ok(x.some((v) => Math.abs(v) > 1e-3), 'embeddings are not all zero');
  });
});
