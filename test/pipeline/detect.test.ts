/**
 * Face detection on real media: two photos, a two-face collage, a 125-frame pan over a face, and
 * images that hold no face (including a drawn smiley that BlazeFace alone takes for a face).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { createFaceDetector, type DetectedFace, type FaceDetector } from '../../src/pipeline/detect/index.js';
import { blazefaceAnchors, letterbox, runBlazeface } from '../../src/pipeline/detect/blazeface.js';
import { applyAffine } from '../../src/pipeline/align/index.js';
import { fileHandler } from '../../src/backends/fs-io.js';
import { createTracker } from '../../src/pipeline/track/index.js';
import type { Box, Frame } from '../../src/pipeline/types.js';
import { MEDIA } from '../fixtures/media.js';

async function toFrame(img: Sharp, index = 0): Promise<Frame> {
  const { data, info } = await img.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { index, ptsMs: index * 40, width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Decodes a video to packed RGB frames with the ffmpeg binary the project ships. */
function decodeVideo(file: string, width: number, height: number): Promise<Frame[]> {
  const ffmpeg = (createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  return new Promise((resolve, reject) => {
    const p = spawn(ffmpeg, ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1']);
    const chunks: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (c: Buffer) => chunks.push(c));
    p.stderr.on('data', (c: Buffer) => { err += c; });
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`ffmpeg exited ${code}: ${err}`));
      const all = Buffer.concat(chunks);
      const size = width * height * 3;
      if (all.length % size !== 0) return reject(new Error(`ffmpeg gave ${all.length} bytes, not a multiple of ${size}`));
      resolve(Array.from({ length: all.length / size }, (_, i) => ({
        index: i, ptsMs: i * 40, width, height, data: new Uint8Array(all.buffer, all.byteOffset + i * size, size),
      })));
    });
  });
}

const inside = ([x, y]: [number, number], b: Box) => x >= b.x && x <= b.x + b.w && y >= b.y && y <= b.y + b.h;

/** The geometry every upright face must have. */
function assertUprightFace(f: DetectedFace) {
  const [le, re, nose, ml, mr] = f.landmarks5;
  assert.ok(le[0] < re[0], 'left eye left of right eye');
  assert.ok(ml[0] < mr[0], 'left mouth corner left of right one');
  assert.ok(Math.max(le[1], re[1]) < nose[1], 'eyes above nose');
  assert.ok(nose[1] < Math.min(ml[1], mr[1]), 'nose above mouth');
  for (const p of f.landmarks5) assert.ok(inside(p, f.box), `landmark ${p} inside box ${JSON.stringify(f.box)}`);
  assert.equal(f.mesh.length, 468);
  assert.ok(f.score >= 0.5);
}

let detector: FaceDetector;
let astronaut: Frame;
let hopper: Frame;

before(async () => {
  detector = await createFaceDetector({ detectEvery: 5 });
  astronaut = await toFrame(sharp(path.join(MEDIA, 'astronaut.png')));
  hopper = await toFrame(sharp(path.join(MEDIA, 'grace_hopper.jpg')));
});
after(() => detector.dispose());

describe('face detector', () => {
  test('finds the one face in each photo, with the eye points on the eyes', async () => {
    // Face positions read off the photos by eye (centre between the eyes, face width).
    const cases = [
      { frame: astronaut, eyes: [225, 102], width: 95 },
      { frame: hopper, eyes: [263, 190], width: 190 },
    ];
    for (const { frame, eyes, width } of cases) {
      detector.reset();
      const faces = await detector.detect(frame);
      assert.equal(faces.length, 1);
      const f = faces[0];
      assertUprightFace(f);
      assert.ok(f.detectorScore !== null && f.detectorScore >= 0.5);
      const mid = [(f.landmarks5[0][0] + f.landmarks5[1][0]) / 2, (f.landmarks5[0][1] + f.landmarks5[1][1]) / 2];
      assert.ok(Math.hypot(mid[0] - eyes[0], mid[1] - eyes[1]) < width * 0.08, `eyes centre ${mid} near ${eyes}`);
      assert.ok(Math.abs(f.box.w - width) < width * 0.25, `box width ${f.box.w} near ${width}`);
      // Interocular distance is about 0.45 of the face width.
      const iod = Math.hypot(f.landmarks5[1][0] - f.landmarks5[0][0], f.landmarks5[1][1] - f.landmarks5[0][1]);
      assert.ok(iod > 0.3 * width && iod < 0.6 * width, `interocular ${iod}`);
    }
  });

  test('a tilted face: rotated crops, landmarks where the rotation puts them', async () => {
    detector.reset();
    const [upright] = await detector.detect(hopper);
    const deg = 35;
    const tilted = await toFrame(sharp(path.join(MEDIA, 'grace_hopper.jpg')).rotate(deg, { background: '#000' }));
    detector.reset();
    for (let i = 0; i < 2; i++) {
      // Frame 0 crops from the detector's eye keypoints, frame 1 from the previous mesh.
      const faces = await detector.detect({ ...tilted, index: i });
      assert.equal(faces.length, 1);
      // sharp turns clockwise about the centre and grows the canvas to fit.
      const a = (deg * Math.PI) / 180;
      const [cx, cy, ncx, ncy] = [hopper.width / 2, hopper.height / 2, tilted.width / 2, tilted.height / 2];
      faces[0].landmarks5.forEach(([x, y], k) => {
        const [ux, uy] = upright.landmarks5[k];
        const ex = ncx + Math.cos(a) * (ux - cx) - Math.sin(a) * (uy - cy);
        const ey = ncy + Math.sin(a) * (ux - cx) + Math.cos(a) * (uy - cy);
        assert.ok(Math.hypot(x - ex, y - ey) < 6, `frame ${i} point ${k} at ${[x, y]}, expected ${[ex, ey]}`);
      });
    }
  });

  test('the next frame follows the face with the mesh alone', async () => {
    detector.reset();
    const first = await detector.detect(hopper);
    const second = await detector.detect({ ...hopper, index: 1 });
    assert.equal(second.length, 1);
    assert.equal(second[0].detectorScore, null, 'no detector run on a tracked frame');
    for (let k = 0; k < 5; k++) {
      assert.ok(Math.hypot(second[0].landmarks5[k][0] - first[0].landmarks5[k][0], second[0].landmarks5[k][1] - first[0].landmarks5[k][1]) < 4);
    }
  });

  test('no face in flat colour, a gradient or colour bars', async () => {
    const w = 320, h = 240;
    const flat = new Uint8Array(w * h * 3).fill(128);
    const gradient = new Uint8Array(w * h * 3);
    const bars = new Uint8Array(w * h * 3);
    const colours = [[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0], [255, 0, 255], [255, 0, 0], [0, 0, 255], [0, 0, 0]];
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const o = (y * w + x) * 3;
        gradient.set([(x * 255) / w, (y * 255) / h, 128], o);
        bars.set(colours[Math.floor((x * 8) / w)], o);
      }
    }
    for (const data of [flat, gradient, bars]) {
      detector.reset();
      assert.deepEqual(await detector.detect({ index: 0, ptsMs: 0, width: w, height: h, data }), []);
    }
  });

  test('a drawn smiley fires BlazeFace, and the mesh rejects it', async () => {
    const svg = '<svg width="256" height="256"><rect width="256" height="256" fill="#fff"/><circle cx="128" cy="128" r="80" fill="#fc0"/>'
      + '<circle cx="100" cy="110" r="10" fill="#000"/><circle cx="156" cy="110" r="10" fill="#000"/>'
      + '<path d="M90 160 Q128 190 166 160" stroke="#000" stroke-width="6" fill="none"/></svg>';
    const frame = await toFrame(sharp(Buffer.from(svg)));
    const dir = path.join(path.dirname(createRequire(import.meta.url).resolve('@vladmandic/human')), '..', 'models');
    const blazeface = await tf.loadGraphModel(fileHandler(path.join(dir, 'blazeface.json')));
    try {
      const dets = await runBlazeface(blazeface, blazefaceAnchors(), frame, { minScore: 0.5, iouThreshold: 0.3, maxFaces: 5 });
      assert.ok(dets.length >= 1, 'BlazeFace alone reports the smiley');
    } finally {
      blazeface.dispose();
    }
    detector.reset();
    assert.deepEqual(await detector.detect(frame), []);
  });

  test('two faces side by side: two faces, two stable tracks while the picture shifts', async () => {
    const both = await toFrame(sharp({ create: { width: 1100, height: 620, channels: 3, background: '#808080' } })
      .composite([{ input: path.join(MEDIA, 'astronaut.png'), left: 10, top: 10 }, { input: path.join(MEDIA, 'grace_hopper.jpg'), left: 560, top: 10 }]));
    const tracker = createTracker({ minHits: 3 });
    const seen = new Map<number, number>();
    detector.reset();
    for (let i = 0; i < 8; i++) {
      // Shift the picture a few pixels a frame, rolling it so the size stays the same.
      const dx = 3 * i, dy = 2 * i;
      const data = new Uint8Array(both.data.length);
      const row = both.width * 3;
      for (let y = 0; y < both.height; y++) {
        const src = both.data.subarray(((y - dy + both.height) % both.height) * row, ((y - dy + both.height) % both.height + 1) * row);
        data.set(src.subarray(row - dx * 3), y * row);
        data.set(src.subarray(0, row - dx * 3), y * row + dx * 3);
      }
      const faces = await detector.detect({ ...both, index: i, data });
      assert.equal(faces.length, 2, `frame ${i}`);
      faces.forEach(assertUprightFace);
      const tracked = tracker.update(i, faces);
      for (const f of tracked) {
        // Identify the face by which photo it is on, and check it keeps its track.
        const photo = f.box.x + f.box.w / 2 < 550 + dx ? 0 : 1;
        if (!seen.has(photo)) seen.set(photo, f.track);
        assert.equal(f.track, seen.get(photo), `frame ${i} photo ${photo}`);
        assert.equal(f.confirmed, i >= 2);
      }
    }
    assert.equal(new Set(seen.values()).size, 2);
  });

  test('face_pan.mp4: one face in every frame, one track, no tensor leak', async () => {
    const frames = await decodeVideo(path.join(MEDIA, 'face_pan.mp4'), 640, 480);
    assert.equal(frames.length, 125);
    const tracker = createTracker();
    const ids = new Set<number>();
    let tensorsAt5 = 0;
    let detectorRuns = 0;
    detector.reset();
    for (const frame of frames) {
      const faces = await detector.detect(frame);
      assert.equal(faces.length, 1, `frame ${frame.index}`);
      assertUprightFace(faces[0]);
      if (faces[0].detectorScore !== null) detectorRuns++;
      for (const f of tracker.update(frame.index, faces)) ids.add(f.track);
      if (frame.index === 5) tensorsAt5 = tf.memory().numTensors;
      if (frame.index === 25) assert.equal(tf.memory().numTensors, tensorsAt5, 'tensor count stable over 20 frames');
    }
    assert.equal(ids.size, 1);
    // detectEvery 5: the detector ran on every fifth frame, the mesh alone tracked the rest.
    assert.ok(detectorRuns >= 25 && detectorRuns <= 35, `detector found the face ${detectorRuns} times`);
  });

  test('letterbox maps the input square onto the frame, centred', () => {
    const m = letterbox(640, 480);
    const [x0, y0] = applyAffine(m, -0.5, -0.5);
    const [x1, y1] = applyAffine(m, 255.5, 255.5);
    assert.ok(Math.abs(x0 + 0.5) < 1e-9 && Math.abs(x1 - 639.5) < 1e-9);
    assert.ok(Math.abs(y0 + 80.5) < 1e-9 && Math.abs(y1 - 559.5) < 1e-9);
  });
});
