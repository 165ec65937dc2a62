/**
 * The two arbex chains the benches run from their parts, fed frames already decoded: the
 * engine's live chain (engine.ts DEFAULTS: batch, liveDetectEvery, smoothing, inFlight,
 * detectorWorkers; the model in `arbex serve`'s default worker threads) and the labelling CLI's
 * (src/cli/label.ts defaults: detect-every 1, workers 0, batch-size 16 with the batcher's own
 * maxWaitMs, smoothing none; detection in the engine's detector worker).
 * Kept here, side by side, so that a change of a product default shows up in review.
 */
import os from 'node:os';
import type { BatcherOptions } from '../src/pipeline/batch/index.js';
import type { SmoothingSpec } from '../src/pipeline/types.js';

export interface ChainSettings {
  batch: BatcherOptions;
  detectEvery: number;
  workers: number;
  smoothing: SmoothingSpec;
  /** Frames inside the chain at once (engine.ts drive()). */
  inFlight: number;
  /** Worker threads running BlazeFace and FaceMesh (engine.ts detectorWorkers); 0: the main thread. */
  detectorWorkers: number;
}

/** `arbex serve`'s default model worker threads (src/cli/serve.ts). */
export const serveWorkers = (): number => Math.min(4, os.availableParallelism() - 1);

export const LIVE_CHAIN = (): ChainSettings => ({ batch: { maxBatch: 16, maxWaitMs: 8 }, detectEvery: 25, workers: serveWorkers(), smoothing: { kind: 'ema', alpha: 0.3 }, inFlight: 3, detectorWorkers: 1 });
export const LABEL_CHAIN = (): ChainSettings => ({ batch: { maxBatch: 16 }, detectEvery: 1, workers: 0, smoothing: { kind: 'none' }, inFlight: 3, detectorWorkers: 1 });
