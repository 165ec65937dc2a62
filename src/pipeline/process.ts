/**
 * One stream's path from a decoded frame to its FrameOutput: detect → track → align → predict
 * (through the shared micro-batcher) → smooth. Detection, tracking and smoothing depend on the
 * frames before, so they run strictly in frame order; predictions of consecutive frames overlap,
 * so the detector works on frame N+1 while the model runs on frame N.
 *
 * @example
 *   const processor = createFrameProcessor({ stream: 'cam1', model, predict: batcher.submit, detector });
 *   const out = await processor.process(frame); // { frame, faces, results: [{ track, corrected, ... }] }
 */
import type { FaceModel, FacePrediction } from '../model/types.js';
import { cropFace } from './align/index.js';
import type { FaceDetector } from './detect/index.js';
import { timed, type StageListener } from './profile.js';
import { argmax, createCausalSmoother } from './smooth/index.js';
import { createTracker, type TrackerOptions } from './track/index.js';
import type { FaceOutput, Frame, FrameOutput, SmoothingSpec } from './types.js';

export interface FrameProcessorOptions {
  stream: string;
  model: Pick<FaceModel, 'classes' | 'inputSize' | 'cropTemplate'>;
  /** Predicts one aligned crop; in the product this is the shared batcher's submit. */
  predict: (crop: Uint8Array) => Promise<FacePrediction>;
  detector: FaceDetector;
  tracker?: Partial<TrackerOptions>;
  /** Causal smoothing only ('centred' needs the future: see smoothOffline). */
  smoothing?: SmoothingSpec;
  /** Benchmarks: receives the time of each alignment and smoothing step (profile.ts). */
  onStage?: StageListener;
}

export interface FrameProcessor {
  process(frame: Frame): Promise<FrameOutput>;
}

/** Runs async steps one at a time, in call order. */
function serial<A, R>(fn: (a: A) => Promise<R>): (a: A) => Promise<R> {
  let last: Promise<unknown> = Promise.resolve();
  return (a) => {
    const result = last.then(() => fn(a));
    last = result.catch(() => undefined);
    return result;
  };
}

export function createFrameProcessor(options: FrameProcessorOptions): FrameProcessor {
  const { stream, model, predict, detector, smoothing = { kind: 'none' }, onStage } = options;
  if (smoothing.kind === 'centred') throw new Error('centred smoothing needs future frames: use it offline (labelVideo), not per frame');
  const tracker = createTracker(options.tracker);
  const smoother = createCausalSmoother({ kind: smoothing.kind, alpha: smoothing.alpha, window: smoothing.window });
  const classes = model.classes;

  const locate = serial(async (frame: Frame) => {
    const faces = tracker.update(frame.index, await detector.detect(frame));
    const predictions = Promise.all(faces.map((f) => predict(timed(onStage, 'alignment', () => cropFace(frame, f.landmarks5, model)))));
    // Keep a rejection from being reported as unhandled before `finish` awaits it.
    predictions.catch(() => undefined);
    return { frame, faces, predictions };
  });

  const finish = serial(async (located: Awaited<ReturnType<typeof locate>>): Promise<FrameOutput> => {
    const { frame, faces } = located;
    const predictions = await located.predictions;
    const results: FaceOutput[] = faces.map((f, i) => {
      const p = predictions[i];
      const smoothed = timed(onStage, 'smoothing', () => smoother.push(f.track, frame.index, p.corrected));
      return {
        track: f.track,
        box: f.box,
        landmarks5: f.landmarks5,
        primary: p.primary,
        corrected: p.corrected,
        confidence: p.confidence,
        label: p.label,
        smoothed,
        smoothedLabel: classes[argmax(smoothed)],
      };
    });
    return { stream, frame: frame.index, ptsMs: frame.ptsMs, faces: results.length, results };
  });

  return { process: async (frame) => finish(await locate(frame)) };
}
