import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createAugmenter, createBatchLoader, openFolderDataset, type Batch, type Dataset } from '../../src/model/data/index.js';
import { collect } from '../support/async.js';
import { tempDir, writeImage } from './fixtures.js';

let dir: string;
let cleanup: () => Promise<void>;
let ds: Dataset;
const colours: Record<string, [number, number, number]> = { a: [255, 0, 0], b: [0, 255, 0], c: [0, 0, 255] };

before(async () => {
  ({ dir, cleanup } = await tempDir());
  for (const [cls, rgb] of Object.entries(colours)) {
    for (let i = 0; i < 4; i++) await writeImage(path.join(dir, cls, `${i}.png`), rgb, 10);
  }
  ds = await openFolderDataset({ root: dir });
});
after(() => cleanup());

const summary = (batches: Batch[]) => batches.map((b) => b.records.map((r) => path.relative(dir, r.path)).join());

test('batches of the requested size with matching labels; last one short unless dropped', async () => {
  const augmenter = createAugmenter({ size: 8 });
  const records = await collect(ds.records());
  const batches = await collect(createBatchLoader(ds, { augmenter, batchSize: 5, seed: 1 }).batches(records, 0));
  assert.deepEqual(batches.map((b) => b.count), [5, 5, 2]);
  for (const b of batches) {
    assert.equal(b.images.length, b.count * 8 * 8 * 3);
    assert.equal(b.size, 8);
    assert.deepEqual([...b.labels], b.records.map((r) => r.label));
    assert.ok(b.images.every((v) => v >= 0 && v <= 1));
    // Solid colours: the class's own channel dominates every pixel even after augmentation.
    b.records.forEach((r, i) => {
      const px = b.images.subarray(i * 192, (i + 1) * 192);
      let own = 0;
      for (let k = r.label; k < px.length; k += 3) own += px[k];
      assert.ok(own / 64 > 0.6, `${r.path}: own channel mean ${own / 64}`);
    });
  }
  assert.deepEqual(new Set(batches.flatMap((b) => b.records)), new Set(records), 'every record once');
  const dropped = await collect(createBatchLoader(ds, { augmenter, batchSize: 5, dropLast: true }).batches(records));
  assert.deepEqual(dropped.map((b) => b.count), [5, 5]);
});

test('same seed and epoch give identical batches; another epoch reshuffles', async () => {
  const augmenter = createAugmenter({ size: 8 });
  const records = await collect(ds.records());
  const loader = createBatchLoader(ds, { augmenter, batchSize: 4, seed: 3, concurrency: 3 });
  const a = await collect(loader.batches(records, 1));
  const b = await collect(loader.batches(records, 1));
  assert.deepEqual(summary(a), summary(b));
  a.forEach((batch, i) => assert.deepEqual(batch.images, b[i].images));
  assert.notDeepEqual(summary(await collect(loader.batches(records, 2))), summary(a));
});

test('evaluation: stream order kept, images are the decoded pixels scaled to [0, 1]', async () => {
  const augmenter = createAugmenter({ size: 6 });
  const batches = await collect(createBatchLoader(ds, { augmenter, batchSize: 7, train: false }).batches(ds.records()));
  assert.deepEqual(batches.map((b) => b.count), [7, 5]);
  assert.deepEqual(batches.flatMap((b) => b.records), await collect(ds.records()));
  const first = batches[0];
  const decoded = await ds.load(first.records[0], 6);
  assert.deepEqual(first.images.subarray(0, 108), Float32Array.from(decoded, (v) => v / 255));
});

test('prefetch stays bounded and an early stop leaves nothing running', async () => {
  let started = 0;
  let running = 0;
  const slow: Pick<Dataset, 'load'> = {
    load: async (r, size) => {
      started++;
      running++;
      await new Promise((res) => setTimeout(res, 5));
      running--;
      return ds.load(r, size);
    },
  };
  const augmenter = createAugmenter({ size: 8 });
  const records = await collect(ds.records());
  const loader = createBatchLoader(slow, { augmenter, batchSize: 2, prefetch: 1 });
  for await (const b of loader.batches(records)) {
    assert.equal(b.count, 2);
    await new Promise((res) => setTimeout(res, 40)); // "training": the next batch decodes meanwhile
    // The batch in use plus one prefetched batch, and no more.
    assert.equal(started, 4);
    break;
  }
  assert.equal(running, 0);
});

test('a failed decode surfaces as an error naming the file', async () => {
  const broken: Pick<Dataset, 'load'> = { load: (r) => Promise.reject(new Error(`cannot decode ${r.path}`)) };
  const loader = createBatchLoader(broken, { augmenter: createAugmenter({ size: 8 }), batchSize: 3 });
  await assert.rejects(collect(loader.batches(await collect(ds.records()))), /cannot decode .*\.png/);
});
