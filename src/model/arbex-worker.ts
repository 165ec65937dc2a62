/**
 * The whole ARBEx model as a worker-pool model: each worker rebuilds it from the resolved config
 * and a parameter snapshot and answers batches of [B, S, S, 3] floats in [0, 1] with the
 * per-face prediction batches (the same `predictBatches` the in-process path runs).
 *
 * @example
 *   const pool = await createWorkerPool({ module: ARBEX_WORKER_MODULE, spec: arbexWorkerSpec(model), size: 2 });
 */
import { fileURLToPath } from 'node:url';
import { restoreParams, snapshotParams, type ParamSnapshot, type WorkerModel } from '../backends/worker-pool.js';
import { createArbex, predictBatches, type Arbex, type ArbexConfig } from './arbex.js';
import { createParams } from './nn/params.js';

export const ARBEX_WORKER_MODULE = fileURLToPath(import.meta.url);

export interface ArbexWorkerSpec {
  config: ArbexConfig;
  weights: ParamSnapshot;
}

export function arbexWorkerSpec(model: Arbex): ArbexWorkerSpec {
  return { config: model.config, weights: snapshotParams(model.store) };
}

export function createWorkerModel(spec: ArbexWorkerSpec): WorkerModel {
  const model = createArbex(createParams(1), spec.config);
  restoreParams(model.store, spec.weights);
  return {
    predict: (input) => predictBatches(model, input),
    dispose: () => model.dispose(),
  };
}
