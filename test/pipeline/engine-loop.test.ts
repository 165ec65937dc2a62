/**
 * With detection in the engine's detector worker (the default), a live stream leaves the main
 * thread's event loop free: the delays it sees are measured against the same stream with
 * detection in this thread (detectorWorkers 0), in the same test, so that a loaded machine slows
 * both alike. The two runs also give the same faces on every frame.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createEngine } from '../../src/pipeline/engine.js';
import type { FaceModel, FacePrediction } from '../../src/model/types.js';
import type { FrameOutput } from '../../src/pipeline/types.js';
import { MEDIA } from '../fixtures/media.js';

const CLASSES = ['a', 'b', 'c'];

/** A model that costs next to nothing, so that detection is the main thread's work when it runs there. */
function constantModel(): FaceModel {
  return {
    classes: CLASSES,
    inputSize: 32,
    async predict(crops) {
      return crops.map((): FacePrediction => ({ primary: [0.5, 0.3, 0.2], corrected: [0.5, 0.3, 0.2], primaryConfidence: 0.5, confidence: 0.5, anchorSimilarity: [], labelIndex: 0, label: 'a' }));
    },
    dispose() {},
  };
}

interface Run {
  outputs: FrameOutput[];
  /** Event-loop delay while the stream ran, ms. */
  p50: number;
  p99: number;
  max: number;
}

/** Plays face_pan.mp4 (125 frames at 25 fps) as a live stream to its end, BlazeFace on every frame. */
async function playStream(detectorWorkers: number): Promise<Run> {
  const engine = await createEngine({ model: constantModel(), settings: { mediaDirs: [MEDIA] }, detectorWorkers, liveDetectEvery: 1 });
  try {
    if (detectorWorkers > 0) {
      // Start the workers before measuring: the delay of interest is the stream's, not the start's.
      for await (const _ of engine.labelVideo(`${MEDIA}/astronaut.png`)) break;
    }
    const outputs: FrameOutput[] = [];
    const histogram = monitorEventLoopDelay({ resolution: 5 });
    const stream = engine.openStream('face_pan.mp4');
    histogram.enable();
    await new Promise<void>((resolve, reject) => {
      stream.subscribe((e) => {
        if (e.type === 'output') outputs.push(e.output);
        // Ingest ends before the last frames leave the pipeline: done at the last frame (or, should
        // one be missing, a while after the end, for the assertions to say which).
        if (e.type === 'output' && e.output.frame === 124) resolve();
        if (e.type === 'state' && e.state === 'ended') setTimeout(resolve, 10_000).unref();
        if (e.type === 'state' && e.state === 'failed') reject(new Error(`stream failed: ${e.error}`));
      });
    });
    histogram.disable();
    const ms = (ns: number) => ns / 1e6;
    return { outputs, p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max) };
  } finally {
    await engine.close();
  }
}

test('a live stream with detection in the worker leaves the event loop free, with the same faces', async (t) => {
  const inThread = await playStream(0);
  const worker = await playStream(1);
  const show = (name: string, r: Run) => `${name}: event-loop delay p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms over ${r.outputs.length} frames`;
  t.diagnostic(show('in thread', inThread));
  t.diagnostic(show('worker', worker));

  // Files are not dropped: both runs see all 125 frames and find the same face in each.
  for (const run of [inThread, worker]) assert.deepEqual(run.outputs.map((o) => o.frame), Array.from({ length: 125 }, (_, i) => i));
  inThread.outputs.forEach((a, i) => {
    const b = worker.outputs[i]!;
    assert.equal(b.faces, a.faces, `frame ${i}: face count`);
    a.results.forEach((f, k) => {
      const g = b.results[k]!;
      for (const key of ['x', 'y', 'w', 'h'] as const) assert.ok(Math.abs(f.box[key] - g.box[key]) <= 1e-5, `frame ${i} box.${key}: ${f.box[key]} vs ${g.box[key]}`);
      f.landmarks5.forEach((p, j) => p.forEach((v, c) => assert.ok(Math.abs(v - g.landmarks5[j]![c]!) <= 1e-5, `frame ${i} landmark ${j}`)));
    });
  });

  // In this thread each frame's BlazeFace + mesh holds the loop for tens of ms; in the worker
  // only the input warps (about a millisecond) remain. Compared within this test, not to
  // absolute figures: a loaded machine stretches both runs.
  assert.ok(worker.p99 < inThread.p99 / 2, `p99 delay: worker ${worker.p99.toFixed(1)} ms vs in thread ${inThread.p99.toFixed(1)} ms`);
  assert.ok(worker.max < inThread.max, `max delay: worker ${worker.max.toFixed(1)} ms vs in thread ${inThread.max.toFixed(1)} ms`);
});
