/**
 * Opt-in timing of the pipeline's stages, for the benchmarks' per-stage profile (bench/peers.ts).
 * A stage is timed only when the caller passes an `onStage` listener; without one the work runs
 * as it is, so results never depend on profiling.
 */

/** The stages that report their time: detector and mesh inside detection, then alignment and smoothing per face. */
export type PipelineStage = 'blazeface' | 'mesh' | 'alignment' | 'smoothing';

/**
 * Receives one run of a stage: its wall time and the CPU time the process spent meanwhile
 * (process.cpuUsage: every thread of the process, so with model worker threads busy at the same
 * time it counts theirs too), both in milliseconds.
 */
export type StageListener = (stage: PipelineStage, ms: number, cpuMs: number) => void;

/**
 * Runs `fn`, reporting its wall and CPU time (until its promise settles, for an async one) to `onStage`.
 *
 * @example
 * const dets = await timed(opts.onStage, 'blazeface', () => runBlazeface(model, anchors, frame, opts));
 */
export function timed<T>(onStage: StageListener | undefined, stage: PipelineStage, fn: () => T): T {
  if (!onStage) return fn();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const report = () => {
    const c = process.cpuUsage(c0);
    onStage(stage, performance.now() - t0, (c.user + c.system) / 1000);
  };
  const out = fn();
  if (out instanceof Promise) return out.finally(report) as T;
  report();
  return out;
}
