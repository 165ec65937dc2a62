import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/index.js';
import { createAugmenter, type AugmentParams } from '../../src/model/data/index.js';
import { seededRandom } from '../../src/model/nn/params.js';

before(() => initBackend('cpu'));

/** A structured image (gradients plus a bright square) so geometry errors show. */
function testImage(side: number): Uint8Array {
  const img = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const i = (y * side + x) * 3;
      const square = x > side / 4 && x < side / 2 && y > side / 5 && y < side / 3 ? 120 : 0;
      img[i] = Math.min(255, Math.round((x / side) * 135) + square);
      img[i + 1] = Math.min(255, Math.round((y / side) * 135) + square);
      img[i + 2] = (x * 7 + y * 13) % 256;
    }
  }
  return img;
}

const neutral: AugmentParams = { cropX: 0, cropY: 0, flip: false, angle: 0, brightness: 1, contrast: 1, saturation: 1, noiseSeed: 0 };

test('training output has the model size, values in [0, 1], and repeats with the same seed', () => {
  const aug = createAugmenter({ size: 28 });
  assert.equal(aug.resize, 32);
  const img = testImage(32);
  const a = aug.train(img, seededRandom(11));
  assert.equal(a.length, 28 * 28 * 3);
  assert.ok(a.every((v) => v >= 0 && v <= 1));
  assert.deepEqual(aug.train(img, seededRandom(11)), a);
  assert.notDeepEqual(aug.train(img, seededRandom(12)), a);
  // Float input in [0, 1] gives the same result as bytes.
  const asFloat = Float32Array.from(img, (v) => v / 255);
  const b = aug.train(asFloat, seededRandom(11));
  assert.ok(b.every((v, i) => Math.abs(v - a[i]) < 1e-5));
  // Strong jitter and noise still stay in range.
  const wild = createAugmenter({ size: 28, brightness: 0.9, contrast: 0.9, saturation: 0.9, noise: 0.5 });
  for (let s = 0; s < 5; s++) assert.ok(wild.train(img, seededRandom(s)).every((v) => v >= 0 && v <= 1));
});

test('draws stay within their ranges', () => {
  const aug = createAugmenter({ size: 20, resize: 24 });
  const rng = seededRandom(4);
  let flips = 0;
  for (let i = 0; i < 400; i++) {
    const p = aug.draw(rng);
    assert.ok(p.cropX >= 0 && p.cropX <= 4 && p.cropY >= 0 && p.cropY <= 4 && Number.isInteger(p.cropX));
    assert.ok(Math.abs(p.angle) <= (10 * Math.PI) / 180);
    for (const f of [p.brightness, p.contrast, p.saturation]) assert.ok(f >= 0.8 && f <= 1.2);
    if (p.flip) flips++;
  }
  assert.ok(flips > 150 && flips < 250, `${flips} flips of 400`);
});

test('neutral parameters copy the crop exactly; flip mirrors it exactly; 90 degrees rotates it', () => {
  const S = 16;
  const aug = createAugmenter({ size: S, resize: 20, noise: 0 });
  const img = testImage(20);
  const at = (buf: ArrayLike<number>, side: number, x: number, y: number, c: number) => buf[(y * side + x) * 3 + c];
  const crop = aug.apply(img, { ...neutral, cropX: 3, cropY: 2 });
  const flipped = aug.apply(img, { ...neutral, cropX: 3, cropY: 2, flip: true });
  const turned = aug.apply(img, { ...neutral, cropX: 3, cropY: 2, angle: Math.PI / 2 });
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      for (let c = 0; c < 3; c++) {
        assert.ok(Math.abs(crop[(y * S + x) * 3 + c] - at(img, 20, x + 3, y + 2, c) / 255) < 1e-6);
        assert.equal(flipped[(y * S + x) * 3 + c], crop[(y * S + (S - 1 - x)) * 3 + c]);
        assert.ok(Math.abs(turned[(y * S + x) * 3 + c] - at(crop, S, S - 1 - y, x, c)) < 1e-5);
      }
    }
  }
});

test('colour jitter: brightness scales, contrast 0 gives the mean grey, saturation 0 gives grey pixels', () => {
  const aug = createAugmenter({ size: 8, resize: 8, noise: 0 });
  const img = testImage(8);
  const base = aug.apply(img, neutral);
  const bright = aug.apply(img, { ...neutral, brightness: 1.5 });
  bright.forEach((v, i) => assert.ok(Math.abs(v - Math.min(1, base[i] * 1.5)) < 1e-6));
  const flat = aug.apply(img, { ...neutral, contrast: 0 });
  assert.ok(flat.every((v) => Math.abs(v - flat[0]) < 1e-6));
  const grey = aug.apply(img, { ...neutral, saturation: 0 });
  for (let i = 0; i < grey.length; i += 3) assert.ok(Math.abs(grey[i] - grey[i + 1]) < 1e-6 && Math.abs(grey[i] - grey[i + 2]) < 1e-6);
  const noisy = createAugmenter({ size: 8, resize: 8, noise: 0.05 }).apply(img, { ...neutral, noiseSeed: 9 });
  const diff = noisy.map((v, i) => v - base[i]);
  const std = Math.sqrt(diff.reduce((a, d) => a + d * d, 0) / diff.length);
  assert.ok(std > 0.03 && std < 0.07, `noise std ${std}`);
});

test('evaluation path is a plain bilinear resize (same as tf.image.resizeBilinear with half-pixel centres)', () => {
  const aug = createAugmenter({ size: 12 });
  const before = tf.memory().numTensors;
  for (const side of [12, 20, 7]) {
    const img = testImage(side);
    const got = aug.eval(img);
    const want = tf.tidy(() =>
      tf.image.resizeBilinear(tf.tensor3d(img, [side, side, 3], 'float32').div(255) as tf.Tensor3D, [12, 12], false, true).dataSync(),
    );
    assert.equal(got.length, want.length);
    got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-5, `side ${side} index ${i}: ${v} vs ${want[i]}`));
    assert.deepEqual(aug.eval(img), got);
  }
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(aug.eval(testImage(12)), Float32Array.from(testImage(12), (v) => v / 255));
});
