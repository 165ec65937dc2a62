/** Similarity transform, affine warp and ArcFace alignment, down to a real photo. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {
  ARCFACE_TEMPLATE, alignFace, alignmentTransform, applyAffine, arcfaceTemplate, composeAffine, invertAffine,
  similarityTransform, warpAffine, type Affine,
} from '../../src/pipeline/align/index.js';
import { createFaceDetector } from '../../src/pipeline/detect/index.js';
import type { Landmarks5 } from '../../src/pipeline/types.js';
import { MEDIA } from '../fixtures/media.js';

function assertAffineClose(a: Affine, b: Affine, tol: number) {
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < tol, `entry ${i}: ${v} vs ${b[i]}`));
}

/** Scale s, rotation theta, then translation (tx, ty). */
const similarity = (s: number, theta: number, tx: number, ty: number): Affine =>
  [s * Math.cos(theta), -s * Math.sin(theta), tx, s * Math.sin(theta), s * Math.cos(theta), ty];

describe('similarityTransform', () => {
  test('the template onto itself is the identity', () => {
    assertAffineClose(similarityTransform(ARCFACE_TEMPLATE, ARCFACE_TEMPLATE), [1, 0, 0, 0, 1, 0], 1e-12);
  });

  test('recovers a known rotation, scale and translation exactly', () => {
    for (const [s, theta, tx, ty] of [[1.7, 0.4, 12, -30], [0.35, -2.5, 300, 41], [3, Math.PI / 2, 0, 0]]) {
      const m = similarity(s, theta, tx, ty);
      const moved = ARCFACE_TEMPLATE.map(([x, y]) => applyAffine(m, x, y));
      assertAffineClose(similarityTransform(ARCFACE_TEMPLATE, moved), m, 1e-9);
    }
  });

  test('is the least-squares fit when the points do not match exactly', () => {
    const m = similarity(2, 0.3, 5, 7);
    const noise = [[0.5, -0.2], [-0.3, 0.4], [0.1, 0.1], [-0.4, -0.3], [0.2, 0.3]];
    const dst = ARCFACE_TEMPLATE.map(([x, y], i) => {
      const [u, v] = applyAffine(m, x, y);
      return [u + noise[i][0], v + noise[i][1]] as [number, number];
    });
    const fit = similarityTransform(ARCFACE_TEMPLATE, dst);
    const sse = (t: Affine) => ARCFACE_TEMPLATE.reduce((acc, [x, y], i) => {
      const [u, v] = applyAffine(t, x, y);
      return acc + (u - dst[i][0]) ** 2 + (v - dst[i][1]) ** 2;
    }, 0);
    // Any nudge of scale, angle or offset away from the fit makes the error larger.
    const [a, , c, b, , f] = fit;
    for (const [da, db, dc, df] of [[1e-3, 0, 0, 0], [-1e-3, 0, 0, 0], [0, 1e-3, 0, 0], [0, -1e-3, 0, 0], [0, 0, 0.01, 0], [0, 0, 0, -0.01]]) {
      const nudged: Affine = [a + da, -(b + db), c + dc, b + db, a + da, f + df];
      assert.ok(sse(nudged) > sse(fit));
    }
    // and it stays close to the true transform (within the noise, where the points are).
    for (const [x, y] of ARCFACE_TEMPLATE) {
      const [u, v] = applyAffine(fit, x, y);
      const [tu, tv] = applyAffine(m, x, y);
      assert.ok(Math.hypot(u - tu, v - tv) < 0.5);
    }
  });

  test('rejects mismatched or degenerate input', () => {
    assert.throws(() => similarityTransform(ARCFACE_TEMPLATE, ARCFACE_TEMPLATE.slice(0, 4)));
    assert.throws(() => similarityTransform([[1, 1], [1, 1]], [[0, 0], [1, 1]]));
  });

  test('invert and compose undo each other', () => {
    const m = similarity(1.3, 0.7, 4, -9);
    assertAffineClose(composeAffine(invertAffine(m), m), [1, 0, 0, 0, 1, 0], 1e-12);
  });
});

describe('warpAffine', () => {
  // A 4x3 image whose red channel is 10*x + 100*y, so bilinear samples are exact linear values.
  const W = 4, H = 3;
  const ramp = { width: W, height: H, data: new Uint8Array(W * H * 3) };
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) ramp.data.set([10 * x + 100 * y, x, y], (y * W + x) * 3);

  test('the identity copies the image', () => {
    const out = warpAffine(ramp, [1, 0, 0, 0, 1, 0], W, H, new Uint8Array(W * H * 3));
    assert.deepEqual(out, ramp.data);
  });

  test('interpolates bilinearly between pixel centres', () => {
    const out = warpAffine(ramp, [1, 0, 0.5, 0, 1, 0.25], 1, 1, new Float32Array(3));
    assert.ok(Math.abs(out[0] - (5 + 25)) < 1e-4);
  });

  test('reads outside the image as black, fading at the border', () => {
    const out = warpAffine(ramp, [1, 0, -10, 0, 1, 0], 1, 1, new Float32Array(3));
    assert.deepEqual(Array.from(out), [0, 0, 0]);
    const edge = warpAffine(ramp, [1, 0, 3.5, 0, 1, 0], 1, 1, new Float32Array(3));
    assert.ok(Math.abs(edge[0] - 15) < 1e-4, `half of pixel (3, 0): ${edge[0]}`);
  });

  test('one 112x112 crop takes well under a millisecond', () => {
    const big = { width: 640, height: 480, data: new Uint8Array(640 * 480 * 3).fill(99) };
    const out = new Uint8Array(112 * 112 * 3);
    const m = invertAffine(similarity(0.5, 0.2, 10, 20));
    for (let i = 0; i < 50; i++) warpAffine(big, m, 112, 112, out);
    const n = 200;
    // CPU time of this process, not wall time: other work on a loaded machine delays the loop
    // without making a crop any more costly. Measured about 0.2 ms here.
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) warpAffine(big, m, 112, 112, out);
    const c = process.cpuUsage(c0);
    const ms = (c.user + c.system) / 1000 / n;
    assert.ok(ms < 1, `${ms.toFixed(3)} ms of CPU per crop`);
  });
});

describe('alignFace', () => {
  test('synthetic: the five points land on the scaled template', () => {
    const frame = { width: 300, height: 300, data: new Uint8Array(300 * 300 * 3) };
    const m = similarity(1.9, -0.35, 80, 60);
    const points: Landmarks5 = ARCFACE_TEMPLATE.map(([x, y]) => applyAffine(m, x, y));
    for (const size of [112, 224, 64]) {
      const t = alignmentTransform(points, size);
      points.forEach(([x, y], i) => {
        const [u, v] = applyAffine(t, x, y);
        const [tu, tv] = arcfaceTemplate(size)[i];
        assert.ok(Math.hypot(u - tu, v - tv) < 1e-9);
      });
      assert.equal(alignFace(frame, points, size).length, size * size * 3);
    }
  });

  test('real photo: the aligned crop has the eyes at the template positions', async () => {
    const detector = await createFaceDetector();
    // Crops are written here to look at; the folder is kept only when the test fails.
    const dir = mkdtempSync(path.join(tmpdir(), 'arbex-align-'));
    let passed = false;
    try {
      for (const file of ['astronaut.png', 'grace_hopper.jpg']) {
        const { data, info } = await sharp(path.join(MEDIA, file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
        const frame = { index: 0, ptsMs: 0, width: info.width, height: info.height, data: new Uint8Array(data) };
        detector.reset();
        const [face] = await detector.detect(frame);
        assert.ok(face, `a face in ${file}`);
        const crop = alignFace(frame, face.landmarks5, 112);
        await sharp(crop, { raw: { width: 112, height: 112, channels: 3 } }).png().toFile(path.join(dir, `${file}.png`));
        // Run the detector again on the crop itself (padded, so it sees the whole face): its
        // eyes must be where the template puts them.
        const pad = 56;
        const padded = await sharp(crop, { raw: { width: 112, height: 112, channels: 3 } })
          .extend({ top: pad, bottom: pad, left: pad, right: pad, background: '#000' }).raw().toBuffer({ resolveWithObject: true });
        detector.reset();
        const [again] = await detector.detect({ index: 0, ptsMs: 0, width: padded.info.width, height: padded.info.height, data: new Uint8Array(padded.data) });
        assert.ok(again, `a face in the aligned crop of ${file} (saved in ${dir})`);
        // Where the fit sends the eyes: a least-squares fit of five points cannot put the eyes
        // exactly on the template when the face's proportions differ from it (the astronaut's
        // broad smile lifts her mouth corners 6 px above the template's, so her eyes land 3 px low).
        const fit = alignmentTransform(face.landmarks5, 112);
        for (const k of [0, 1]) {
          const [x, y] = [again.landmarks5[k][0] - pad, again.landmarks5[k][1] - pad];
          const [fx, fy] = applyAffine(fit, ...face.landmarks5[k]);
          const [tx, ty] = ARCFACE_TEMPLATE[k];
          assert.ok(Math.hypot(x - fx, y - fy) <= 1.5, `${file} eye ${k} at ${[x, y]}, the fit put it at ${[fx, fy]}`);
          assert.ok(Math.abs(x - tx) <= 3 && Math.abs(y - ty) <= 3.5, `${file} eye ${k} at ${[x, y]}, template ${[tx, ty]}`);
        }
      }
      passed = true;
    } finally {
      detector.dispose();
      if (passed) rmSync(dir, { recursive: true });
    }
  });
});
