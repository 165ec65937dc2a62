/**
 * The default model's recipe end to end on a tiny generated FER2013-style folder (48x48 grey
 * JPEGs under FER2013's folder names): `arbex train --config configs/fer.json --init DIR` on the
 * frozen cnn extractor with mirror averaging and natural epochs, through the feature cache, then
 * `arbex eval --images --crops` on the trained model. FER2013 itself is not needed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { initBackend } from '../../src/backends/index.js';
import { ROOT } from '../../src/env.js';
import { createArbex, saveArbex, validateArbexConfig } from '../../src/model/arbex.js';
import { createParams, seededRandom } from '../../src/model/nn/params.js';

const run = promisify(execFile);
const ARBEX = path.join(ROOT, 'bin', 'arbex.js');
// FER2013's folder names, in the model's class order (Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise).
const FOLDERS = ['neutral', 'angry', 'disgust', 'fear', 'happy', 'sad', 'surprise'];
const SPLITS = { train: 16, validation: 6, test: 6 };

/** Class c: a bright 16x16 square in cell c of a 3x3 grid on a noisy grey face-sized image. */
async function writeImage(file: string, c: number, rng: () => number): Promise<void> {
  const px = new Uint8Array(48 * 48);
  const [cx, cy] = [(c % 3) * 16, Math.floor(c / 3) * 16];
  for (let y = 0; y < 48; y++) {
    for (let x = 0; x < 48; x++) {
      const inside = x >= cx && x < cx + 16 && y >= cy && y < cy + 16;
      px[y * 48 + x] = Math.max(0, Math.min(255, Math.round((inside ? 200 : 70) + 40 * (rng() - 0.5))));
    }
  }
  await sharp(px, { raw: { width: 48, height: 48, channels: 1 } }).jpeg({ quality: 95 }).toFile(file);
}

describe('the FER recipe (configs/fer.json) on a tiny FER2013-style folder', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'arbex-fer-recipe-'));
    const rng = seededRandom(11);
    for (const [split, n] of Object.entries(SPLITS)) {
      for (const [c, folder] of FOLDERS.entries()) {
        await mkdir(path.join(dir, 'fer', split, folder), { recursive: true });
        for (let i = 0; i < n; i++) await writeImage(path.join(dir, 'fer', split, folder, `${i}.jpg`), c, rng);
      }
    }
    // The extractor to start from (--init): the shipped architecture with seeded random weights.
    const recipe = JSON.parse(await readFile(path.join(ROOT, 'configs', 'fer.json'), 'utf8'));
    await initBackend(undefined, { log: false });
    const model = createArbex(createParams(5), validateArbexConfig(recipe.model), { seed: 5 });
    await saveArbex(path.join(dir, 'init'), model);
    model.dispose();
    // The recipe as shipped, shortened to 4 epochs of small batches.
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...recipe, epochs: 4, batchSize: 16, evalBatchSize: 64 }));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('train (frozen cnn, mirror averaging, natural epochs, cache) then eval --crops agree and learn', { timeout: 600_000 }, async () => {
    const fer = path.join(dir, 'fer');
    const args = ['train', '--config', path.join(dir, 'config.json'), '--init', path.join(dir, 'init'), '--data', `folder:${fer}/train`, '--val', `folder:${fer}/validation`, '--test', `folder:${fer}/test`, '--cache', path.join(dir, 'cache'), '--cache-workers', '0'];
    const first = await run(process.execPath, [ARBEX, ...args, '--out', path.join(dir, 'run')]);
    const log = first.stdout + first.stderr;
    assert.match(log, /train: 112 images, per class Neutral 16, Anger 16, Disgust 16, Fear 16, Happiness 16, Sadness 16, Surprise 16/);
    assert.match(log, /cache: miss [0-9a-f]{32} train \(112 images x 2 views, D 192\)/);
    const metrics = (await readFile(path.join(dir, 'run', 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(metrics.length, 4);
    // Natural epochs: every training image once, in whole batches of 16 (112 / 16 = 7 steps).
    assert.deepEqual(metrics.map((m) => m.step), [7, 14, 21, 28]);
    const test = JSON.parse(await readFile(path.join(dir, 'run', 'test.json'), 'utf8'));
    assert.equal(test.count, 42);
    // The squares are easy: a random frozen CNN's features carry their position.
    assert.ok(test.accuracy >= 0.6, `test accuracy ${test.accuracy}`);

    // The product's evaluation of the saved model scores exactly what training reported.
    const report = path.join(dir, 'report.json');
    await run(process.execPath, [ARBEX, 'eval', '--images', `${fer}/test`, '--crops', '--weights', path.join(dir, 'run', 'best'), '--out', report]);
    const r = JSON.parse(await readFile(report, 'utf8'));
    assert.equal(r.images, 42);
    assert.equal(r.missing, 0);
    assert.ok(Math.abs(r.accuracy - test.accuracy) < 1e-9, `eval ${r.accuracy} vs train's test ${test.accuracy}`);

    // A second run on the same data and extractor reads the cache instead of embedding again.
    const second = await run(process.execPath, [ARBEX, ...args, '--out', path.join(dir, 'run2')]);
    assert.match(second.stdout + second.stderr, /cache: hit [0-9a-f]{32} train/);
    assert.deepEqual(await readFile(path.join(dir, 'run2', 'best', 'weights.bin')), await readFile(path.join(dir, 'run', 'best', 'weights.bin')));
  });
});
