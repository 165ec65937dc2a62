/**
 * Detection with its graphs in a worker thread (the engine's default for live streams and
 * labelling) against the same detector with the graphs in this thread: the same faces on every
 * frame of face_pan.mp4, boxes, landmarks and meshes to 1e-5.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSource } from '../../src/ingest/index.js';
import { createFaceDetector, startDetectorWorkers, type DetectedFace, type DetectorGraphs } from '../../src/pipeline/detect/index.js';
import type { Frame } from '../../src/pipeline/types.js';
import { FACE_PAN } from '../fixtures/media.js';

let frames: Frame[];
let workers: DetectorGraphs;

before(async () => {
  frames = [];
  for await (const f of openSource({ kind: 'file', path: FACE_PAN, input: FACE_PAN }).frames()) frames.push(f);
  workers = await startDetectorWorkers({ size: 1 });
});
after(() => workers.dispose());

const TOL = 1e-5;

function assertSameFaces(a: DetectedFace[], b: DetectedFace[], where: string) {
  assert.equal(b.length, a.length, `${where}: face count`);
  a.forEach((f, i) => {
    const g = b[i]!;
    const close = (x: number, y: number, what: string) => assert.ok(Math.abs(x - y) <= TOL, `${where} face ${i} ${what}: ${x} vs ${y}`);
    for (const k of ['x', 'y', 'w', 'h'] as const) close(f.box[k], g.box[k], `box.${k}`);
    close(f.score, g.score, 'score');
    assert.equal(f.detectorScore === null, g.detectorScore === null, `${where} face ${i}: detector ran on both or neither`);
    if (f.detectorScore !== null) close(f.detectorScore, g.detectorScore!, 'detectorScore');
    f.landmarks5.forEach((p, k) => p.forEach((v, c) => close(v, g.landmarks5[k]![c]!, `landmark ${k}`)));
    assert.equal(g.mesh.length, f.mesh.length);
    f.mesh.forEach((p, k) => p.forEach((v, c) => close(v, g.mesh[k]![c]!, `mesh point ${k}`)));
  });
}

// detectEvery 1: BlazeFace on each of the first 50 frames; 5: every frame, mostly mesh tracking.
for (const [detectEvery, count] of [[1, 50], [5, 125]] as const) {
  test(`worker graphs give the in-thread faces on the first ${count} frames of face_pan.mp4 (detectEvery ${detectEvery})`, async () => {
    const here = await createFaceDetector({ detectEvery });
    const there = await createFaceDetector({ detectEvery }, workers);
    try {
      assert.equal(frames.length, 125);
      let faces = 0;
      for (const frame of frames.slice(0, count)) {
        // Both in flight at once, as in the engine: each detector keeps its own order.
        const [a, b] = await Promise.all([here.detect(frame), there.detect(frame)]);
        assertSameFaces(a, b, `frame ${frame.index}`);
        faces += a.length;
      }
      assert.equal(faces, count, 'one face in each frame');
    } finally {
      here.dispose();
      there.dispose();
    }
  });
}

test('one set of worker graphs serves several detectors, each with its own tracking', async () => {
  const a = await createFaceDetector({ detectEvery: 5 }, workers);
  const b = await createFaceDetector({ detectEvery: 5 }, workers);
  const ref = await createFaceDetector({ detectEvery: 5 });
  try {
    // Two streams at different places of the clip, interleaved on the same workers.
    for (let i = 0; i < 40; i++) {
      const [fa, fb, r] = await Promise.all([a.detect(frames[i]!), b.detect(frames[124 - i]!), ref.detect(frames[i]!)]);
      assertSameFaces(r, fa, `stream a frame ${i}`);
      assert.equal(fb.length, 1);
    }
  } finally {
    a.dispose();
    b.dispose();
    ref.dispose();
  }
});
