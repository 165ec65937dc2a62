/**
 * The accuracy bench's systems and scoring, without FER2013. The real face is the smiling woman on
 * the right of @vladmandic/face-api's demo/sample1.jpg (the devDependency ships it), turned
 * upright and made FER2013-like: a grey 48x48 JPEG.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { benchAccuracy } from '../../bench/accuracy.js';
import { loadDetectSystem, loadSystem, type Pixels, type System } from '../../bench/systems.js';
import { ASTRONAUT, GRACE_HOPPER } from '../fixtures/media.js';
import { initBackend } from '../../src/backends/index.js';

await initBackend(undefined, { log: false });

const require = createRequire(import.meta.url);
const packageDir = (name: string) => path.resolve(path.dirname(require.resolve(name)), '..');
const FACE_API = packageDir('@vladmandic/face-api');
const HUMAN = packageDir('@vladmandic/human');

let dir: string;
let smile: string;
const systems: Partial<Record<'face-api' | 'human', System>> = {};

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'arbex-bench-'));
  smile = path.join(dir, 'smile.jpg');
  const region = await sharp(path.join(FACE_API, 'demo', 'sample1.jpg')).extract({ left: 1280, top: 20, width: 600, height: 600 }).rotate(-39).toBuffer({ resolveWithObject: true });
  const { width, height } = region.info;
  await sharp(region.data)
    .extract({ left: Math.round(width / 2 - 150), top: Math.round(height / 2 - 150), width: 300, height: 300 })
    .greyscale()
    .resize(48, 48)
    .jpeg()
    .toFile(smile);
  systems['face-api'] = await loadSystem('face-api');
  systems.human = await loadSystem('human');
});

after(async () => {
  for (const s of Object.values(systems)) s.dispose();
  await rm(dir, { recursive: true, force: true });
});

const argmax = (p: number[]) => p.indexOf(Math.max(...p));

describe('label order', () => {
  test("face-api: the package's FACE_EXPRESSION_LABELS, as project classes", () => {
    const faceapi = require(path.join(FACE_API, 'dist', 'face-api.node-wasm.js')) as { FACE_EXPRESSION_LABELS: string[] };
    assert.deepEqual(systems['face-api']!.labels, faceapi.FACE_EXPRESSION_LABELS);
    assert.deepEqual(systems['face-api']!.classes, ['Neutral', 'Happiness', 'Sadness', 'Anger', 'Fear', 'Disgust', 'Surprise']);
  });

  test("human: the annotations src/gear/emotion.ts gives a one-channel model, as project classes", async () => {
    const source = await readFile(path.join(HUMAN, 'src', 'gear', 'emotion.ts'), 'utf8');
    const grey = /if \(!rgb\) annotations = (\[[^\]]*\])/.exec(source)?.[1];
    assert.ok(grey, 'the one-channel label list is in emotion.ts');
    assert.deepEqual(systems.human!.labels, JSON.parse(grey.replaceAll("'", '"')));
    assert.deepEqual(systems.human!.classes, ['Anger', 'Disgust', 'Fear', 'Happiness', 'Sadness', 'Surprise', 'Neutral']);
  });
});

describe('peers on a real smiling face', () => {
  for (const name of ['face-api', 'human'] as const) {
    test(`${name} loads from node_modules and says Happiness, confidently`, async () => {
      const system = systems[name]!;
      const [p] = await system.predict([await system.decode(smile)]);
      assert.equal(p!.length, 7);
      assert.ok(Math.abs(p!.reduce((a, b) => a + b) - 1) < 1e-4);
      assert.equal(system.classes[argmax(p!)], 'Happiness');
      assert.ok(p![argmax(p!)]! > 0.9, `p(Happiness) = ${p![argmax(p!)]}`);
    });
  }

  test("face-api's rebuilt net gives the distributions of face-api's own FaceExpressionNet", async () => {
    const faceapi = require(path.join(FACE_API, 'dist', 'face-api.node-wasm.js')) as {
      nets: { faceExpressionNet: { loadFromDisk(dir: string): Promise<void>; predictExpressions(t: tf.Tensor3D): Promise<Record<string, number>> } };
    };
    await faceapi.nets.faceExpressionNet.loadFromDisk(path.join(FACE_API, 'model'));
    const photo = path.join(FACE_API, 'demo', 'sample1.jpg');
    const colour = async (left: number, top: number, width: number, height: number): Promise<Pixels> => {
      const data = await sharp(photo).extract({ left, top, width, height }).raw().toBuffer();
      return { data: new Uint8Array(data), width, height };
    };
    // 48x48 grey; a wide and a tall colour crop, zero-padded to a square unevenly (odd differences); one larger than 112.
    const inputs = [await systems['face-api']!.decode(smile), await colour(1400, 150, 91, 60), await colour(1450, 200, 70, 101), await colour(1350, 100, 300, 300)];
    const ours = await systems['face-api']!.predict(inputs);
    for (const [i, p] of inputs.entries()) {
      const theirs = await faceapi.nets.faceExpressionNet.predictExpressions(tf.tensor3d(p.data, [p.height, p.width, 3], 'int32'));
      const expected = systems['face-api']!.labels.map((l) => theirs[l]!);
      const diff = Math.max(...ours[i]!.map((v, k) => Math.abs(v - expected[k]!)));
      assert.ok(diff < 1e-4, `input ${i}: max difference ${diff}`);
    }
  });
});

test('arbex loads the default model and gives a distribution over its classes', async () => {
  const arbex = await loadSystem('arbex');
  try {
    const [p] = await arbex.predict([await arbex.decode(smile)]);
    assert.equal(p!.length, arbex.classes.length);
    assert.ok(Math.abs(p!.reduce((a, b) => a + b) - 1) < 1e-4);
    assert.match(arbex.weights!.sha256, /^[0-9a-f]{12}$/);
  } finally {
    arbex.dispose();
  }
});

describe('benchAccuracy', () => {
  test('folder names matched by synonym; --limit stratified; F1 over the classes in DIR', async () => {
    // HAPPY/ holds four copies of the smile, sad/ two: human says Happiness for all six.
    const root = path.join(dir, 'folders');
    for (const [folder, n] of [['HAPPY', 4], ['sad', 2]] as const) {
      await mkdir(path.join(root, folder), { recursive: true });
      for (let i = 0; i < n; i++) await copyFile(smile, path.join(root, folder, `${i}.jpg`));
    }
    const [line] = await benchAccuracy({ dir: root, systems: ['human'], limit: 3 });
    // Limit 3 of 6: two of HAPPY, one of sad. Happiness: tp 2, 2 true, 3 predicted → F1 4/5.
    assert.equal(line!.images, 3);
    assert.equal(line!.accuracy, 0.6667);
    assert.deepEqual(line!.perClassF1, { Happiness: 0.8, Sadness: 0 });
    assert.equal(line!.macroF1, 0.4);
    assert.equal(line!.version, JSON.parse(await readFile(path.join(HUMAN, 'package.json'), 'utf8')).version);
    assert.ok(line!.imagesPerSecModel! > 0 && line!.imagesPerSecWall > 0);
    assert.equal(line!.machine.backend, tf.getBackend());
  });

  test('refuses a folder that names no class', async () => {
    const root = path.join(dir, 'unknown');
    await mkdir(path.join(root, 'bored'), { recursive: true });
    await copyFile(smile, path.join(root, 'bored', '0.jpg'));
    await assert.rejects(benchAccuracy({ dir: root, systems: ['human'] }), /"bored" is not in the class list/);
  });
});

describe('benchAccuracy --detect: each system finds the face itself', () => {
  test('full-size photos and a 48x48 crop (bordered first) are found by every system; a photo without a face counts as wrong, as noFace', async () => {
    // HAPPY/: the two fixture portraits (both smile, more or less) and the 48x48 smile; neutral/: a grey image.
    const root = path.join(dir, 'photos');
    await mkdir(path.join(root, 'HAPPY'), { recursive: true });
    await mkdir(path.join(root, 'neutral'), { recursive: true });
    await copyFile(ASTRONAUT, path.join(root, 'HAPPY', 'astronaut.png'));
    await copyFile(GRACE_HOPPER, path.join(root, 'HAPPY', 'grace_hopper.jpg'));
    await copyFile(smile, path.join(root, 'HAPPY', 'smile.jpg'));
    await sharp({ create: { width: 200, height: 160, channels: 3, background: { r: 128, g: 128, b: 128 } } }).png().toFile(path.join(root, 'neutral', 'grey.png'));
    const lines = await benchAccuracy({ dir: root, detect: true });
    assert.deepEqual(lines.map((l) => l.system), ['arbex', 'face-api', 'human']);
    for (const line of lines) {
      assert.equal(line.mode, 'detect');
      assert.equal(line.border, 0.5);
      assert.equal(line.images, 4);
      assert.equal(line.noFace, 1, `${line.system}: only the grey image has no face`);
      assert.ok(line.accuracy <= 0.75, `${line.system}: the grey image counts as wrong`);
      assert.equal(line.imagesPerSecModel, undefined);
      assert.equal(line.foundAccuracy, Math.round((line.accuracy * 4 * 10000) / 3) / 10000);
    }
  });

  test('arbex finds the face as `arbex eval --images` does and gives a distribution over its classes', async () => {
    const arbex = await loadDetectSystem('arbex');
    try {
      const p = await arbex.predictPhoto(GRACE_HOPPER);
      assert.equal(p!.length, arbex.classes.length);
      assert.ok(Math.abs(p!.reduce((a, b) => a + b) - 1) < 1e-4);
    } finally {
      arbex.dispose();
    }
  });

  test('--border applies to --detect only', async () => {
    const { run } = await import('../../bench/accuracy.js');
    await assert.rejects(run([dir, '--border', '0.2']), /--border applies to --detect/);
    await assert.rejects(run([dir, '--detect', '--border=-1']), /--border must be a number >= 0/);
  });
});
