import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { symmetricNoise } from '../../src/model/data/noise.js';
import { openDataSpec, parseDataSpec } from '../../src/model/train/data.js';
import { collect } from '../support/async.js';
import { tempDir, writeImage } from './fixtures.js';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await tempDir()));
after(() => cleanup());

test('symmetric noise moves exactly p % of the labels, each to another class, reproducibly', () => {
  const clean = Array.from({ length: 700 }, (_, i) => i % 7);
  for (const percent of [0, 20, 40]) {
    const noisy = symmetricNoise(clean, percent, 7, 3);
    const moved = noisy.filter((l, i) => l !== clean[i]).length;
    assert.equal(moved, Math.round((700 * percent) / 100));
    assert.ok(noisy.every((l) => Number.isInteger(l) && l >= 0 && l < 7));
    assert.deepEqual(symmetricNoise(clean, percent, 7, 3), noisy, 'same seed, same labels');
  }
  const a = symmetricNoise(clean, 40, 7, 1);
  const b = symmetricNoise(clean, 40, 7, 2);
  assert.notDeepEqual(a, b, 'another seed moves other labels');
  // Every wrong class is reachable: the moved labels of class 0 spread over 1..6.
  const targets = new Set(a.filter((l, i) => clean[i] === 0 && l !== 0));
  assert.deepEqual([...targets].sort(), [1, 2, 3, 4, 5, 6]);
  assert.throws(() => symmetricNoise(clean, 101, 7, 1), /within 0\.\.100/);
});

test('a data spec with noise=P corrupts the training labels only, keeping records and images', async () => {
  const root = path.join(dir, 'faces');
  const classes = ['happy', 'sad', 'neutral'];
  for (const [c, cls] of classes.entries()) {
    for (let i = 0; i < 10; i++) await writeImage(path.join(root, cls, `${i}.png`), [c * 80, i * 20, 0]);
  }
  const clean = await collect((await openDataSpec(parseDataSpec(`folder:${root}`), classes)).records());
  const ds = await openDataSpec(parseDataSpec(`folder:${root},noise=40,noiseSeed=5`), classes);
  const noisy = await collect(ds.records());
  assert.deepEqual(noisy.map((r) => r.path), clean.map((r) => r.path));
  assert.equal(noisy.filter((r, i) => r.label !== clean[i]!.label).length, 12);
  assert.deepEqual(await collect(ds.records()), noisy, 'the same labels on every pass');
  assert.deepEqual([...(await ds.load(noisy[0]!, 2))], [...(await ds.load(clean[0]!, 2))]);
  assert.throws(() => parseDataSpec(`folder:${root},noisy=4`), /"noisy=4" is not an option of folder \(group=\.\.\., noise=\.\.\., noiseSeed=\.\.\.\)/);
  await assert.rejects(openDataSpec(parseDataSpec(`folder:${root},noise=140`), classes), /noise must be a percentage within 0\.\.100/);
});
