/**
 * From one face's per-frame distributions (null where there was no face or no image) to the
 * per-frame predictions that are scored: smoothing, then filling or dropping missing frames.
 * Crops and videos go through this same function, so the two modes differ only in their inputs.
 */
import { argmax, createCausalSmoother, smoothCentred, smoothingWindow, type SeriesPoint } from '../pipeline/smooth/index.js';
import type { SmoothingSpec } from '../pipeline/types.js';

/** ABAW practice: predictions of frames without a face are interpolated from their neighbours. */
export type MissingPolicy = 'interpolate' | 'skip';

export interface FramePrediction {
  /** 0-based frame index. */
  frame: number;
  dist: number[];
  /** argmax of dist: the label that is scored. */
  label: number;
  /** False when the frame had no face / image and its distribution was interpolated. */
  observed: boolean;
}

export interface SeriesOptions {
  smoothing: SmoothingSpec;
  missing: MissingPolicy;
}

/**
 * Predictions for frames 0..raw.length-1 (undefined where none can be made: a skipped missing
 * frame, or every frame of a series with no observation at all).
 *
 * - centred: mean over ±window frames after interpolating missing ones (smoothCentred);
 * - ema / trailing: the causal smoother over the observed frames, in order;
 * - none: the raw distributions.
 * Missing frames are then filled by linear interpolation (the nearest value held at the ends),
 * or left out with `missing: 'skip'`.
 *
 * @example
 * const preds = predictSeries([d0, null, d2], { smoothing: { kind: 'centred', window: 25 }, missing: 'interpolate' });
 */
export function predictSeries(raw: readonly (number[] | null)[], options: SeriesOptions): (FramePrediction | undefined)[] {
  const { smoothing, missing } = options;
  const points: SeriesPoint[] = raw.map((dist, frame) => ({ frame, dist }));
  let smoothed: SeriesPoint[] = points;
  if (smoothing.kind === 'ema' || smoothing.kind === 'trailing') {
    const smoother = createCausalSmoother({ kind: smoothing.kind, alpha: smoothing.alpha, window: smoothing.window, forgetAfter: Number.MAX_SAFE_INTEGER });
    smoothed = points.map((p) => ({ frame: p.frame, dist: p.dist && smoother.push(0, p.frame, p.dist) }));
  }
  // D = 0 interpolates without smoothing; the centred kind interpolates first, then averages.
  const D = smoothing.kind === 'centred' ? smoothingWindow(smoothing) : 0;
  const filled = raw.length ? smoothCentred(smoothed, D) : [];
  const out: (FramePrediction | undefined)[] = new Array(raw.length).fill(undefined);
  for (const p of filled) {
    const observed = raw[p.frame] !== null;
    if (!observed && missing === 'skip') continue;
    out[p.frame] = { frame: p.frame, dist: p.dist, label: argmax(p.dist), observed };
  }
  return out;
}
