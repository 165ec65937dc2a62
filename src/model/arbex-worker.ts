/**
 * The whole ARBEx model as a worker-pool model: each worker rebuilds it from the resolved config
 * and a parameter snapshot and answers batches of [B, S, S, 3] floats in [0, 1] with the
 * per-face prediction batches (the same `predictBatches` the in-process path runs).
 *
 * @example
 *   const pool = await createWorkerPool({ module: ARBEX_WORKER_MODULE, spec: arbexWorkerSpec(model), size: 2 });
 */
import { fileURLToPath } from 'node:url';
import type { EngineName } from '../backends/onnx.js';
import { restoreParams, snapshotParams, type ParamSnapshot, type WorkerModel } from '../backends/worker-pool.js';
import { createArbex, createModelRunner, type Arbex, type ArbexConfig } from './arbex.js';
import { createParams } from './nn/params.js';

export const ARBEX_WORKER_MODULE = fileURLToPath(import.meta.url);

export interface ArbexWorkerSpec {
  config: ArbexConfig;
  weights: ParamSnapshot;
  /** Engine of the extractor in each worker (default tfjs); the head runs on the worker's tfjs backend. */
  engine?: EngineName;
}

export function arbexWorkerSpec(model: Arbex, engine: EngineName = 'tfjs'): ArbexWorkerSpec {
  return { config: model.config, weights: snapshotParams(model.store), engine };
}

export async function createWorkerModel(spec: ArbexWorkerSpec): Promise<WorkerModel> {
  const model = createArbex(createParams(1), spec.config);
  restoreParams(model.store, spec.weights);
  let runner;
  try {
    runner = await createModelRunner(model, spec.engine ?? 'tfjs');
  } catch (e) {
    model.dispose();
    throw e;
  }
  return {
    predict: (input) => runner.predict(input),
    dispose: () => {
      void runner.dispose().finally(() => model.dispose());
    },
  };
}
