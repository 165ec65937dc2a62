/**
 * Opt-in timing of the pipeline's stages, for the benchmarks' per-stage profile (bench/peers.ts).
 * A stage is timed only when the caller passes an `onStage` listener; without one the work runs
 * as it is, so results never depend on profiling.
 */

/** The stages that report their time: detector and mesh inside detection, then alignment and smoothing per face. */
export type PipelineStage = 'blazeface' | 'mesh' | 'alignment' | 'smoothing';

/** Receives the wall time of one run of a stage, in milliseconds. */
export type StageListener = (stage: PipelineStage, ms: number) => void;

/**
 * Runs `fn`, reporting its wall time (until its promise settles, for an async one) to `onStage`.
 *
 * @example
 * const dets = await timed(opts.onStage, 'blazeface', () => runBlazeface(model, anchors, frame, opts));
 */
export function timed<T>(onStage: StageListener | undefined, stage: PipelineStage, fn: () => T): T {
  if (!onStage) return fn();
  const t0 = performance.now();
  const out = fn();
  if (out instanceof Promise) return out.finally(() => onStage(stage, performance.now() - t0)) as T;
  onStage(stage, performance.now() - t0);
  return out;
}
