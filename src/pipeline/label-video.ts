/**
 * Labelling a recorded video: every frame, in order, with nothing dropped (ingest waits for the
 * pipeline), smoothed causally as it goes or, for `centred`, over the whole video at the end.
 *
 * @example
 *   for await (const out of labelFrames({ file, open, detector, processorFor, inFlight: 3, classes }, { smoothing })) write(out);
 */
import type { IngestSource } from '../ingest/index.js';
import { createFaceDetector, type DetectorGraphs, type FaceDetector, type FaceDetectorOptions } from './detect/index.js';
import { drive } from './drive.js';
import { smoothOffline } from './offline.js';
import type { FrameProcessor } from './process.js';
import { smoothingWindow } from './smooth/spec.js';
import type { FrameOutput, LabelOptions, SmoothingSpec } from './types.js';

export interface LabelDeps {
  file: string;
  /** Opens the file (ingest's openSource with the engine's settings). */
  open(file: string): IngestSource;
  detector: Partial<FaceDetectorOptions>;
  /** The engine's shared detector graphs (worker threads); undefined: the labelling loads its own, in this thread. */
  graphs?: () => Promise<DetectorGraphs>;
  processorFor(stream: string, detector: FaceDetector, smoothing: SmoothingSpec): FrameProcessor;
  inFlight: number;
  classes: readonly string[];
  /** Counts each frame decoded. */
  onFrame(): void;
}

export async function* labelFrames(deps: LabelDeps, options: LabelOptions = {}): AsyncIterable<FrameOutput> {
  const { file } = deps;
  const { smoothing = { kind: 'none' }, signal } = options;
  const frames = deps.open(file);
  const onAbort = () => void frames.stop();
  signal?.addEventListener('abort', onAbort);
  const detector = await createFaceDetector({ ...deps.detector, ...(options.detectEvery ? { detectEvery: options.detectEvery } : {}) }, await deps.graphs?.());
  let driving: Promise<unknown> | undefined;
  try {
    const centred = smoothing.kind === 'centred';
    const processor = deps.processorFor(file, detector, centred ? { kind: 'none' } : smoothing);
    // Known once ffmpeg has reported the container's duration and rate (an estimate: the exact
    // count is only known at the end).
    const total = () => {
      const i = frames.info();
      return i?.durationSec && i.fps ? Math.round(i.durationSec * i.fps) : undefined;
    };
    const outputs: FrameOutput[] = [];
    const queue: FrameOutput[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    let failure: unknown;
    driving = drive(frames.frames(), processor, deps.inFlight, (out) => {
      options.onProgress?.(out.frame + 1, total());
      (centred ? outputs : queue).push(out);
      wake?.();
    }, deps.onFrame)
      .catch((e) => (failure = e))
      .finally(() => {
        done = true;
        wake?.();
      });
    while (!done || queue.length) {
      if (queue.length) yield queue.shift()!;
      else await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
    await driving;
    if (signal?.aborted) throw new Error(`labelling of ${file} was cancelled`);
    if (failure) throw failure;
    if (centred) {
      smoothOffline(outputs, smoothingWindow(smoothing), deps.classes);
      yield* outputs;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await frames.stop();
    // A caller that leaves early leaves frames in flight: let them settle before the detector goes
    // (and before engine.close() may end the detector workers under them).
    await driving;
    detector.dispose();
  }
}
