/**
 * The extractor as a worker-pool model: each worker rebuilds it from its config and a parameter
 * snapshot, and answers batches of [B, inputSize, inputSize, 3] RGB in [0, 1] with embeddings.
 *
 * @example
 *   const pool = await createWorkerPool({ module: EXTRACTOR_WORKER_MODULE, spec: extractorWorkerSpec(fx, store) });
 *   const { embedding } = await pool.predict({ data, shape: [16, 112, 112, 3] });
 */
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { restoreParams, snapshotParams, type Batch, type ParamSnapshot, type WorkerModel } from '../../backends/worker-pool.js';
import { createParams, disposeParams, type ParamStore } from '../nn/params.js';
import type { ExtractorConfig } from './config.js';
import { createExtractor, type Extractor } from './extractor.js';

export const EXTRACTOR_WORKER_MODULE = fileURLToPath(import.meta.url);

export interface ExtractorWorkerSpec {
  config: ExtractorConfig;
  name: string;
  weights: ParamSnapshot;
}

/** A spec reproducing `fx` (with its current weights from `store`) inside a worker. */
export function extractorWorkerSpec(fx: Extractor, store: ParamStore): ExtractorWorkerSpec {
  const prefix = `${fx.name}.`;
  const weights = Object.fromEntries(Object.entries(snapshotParams(store)).filter(([n]) => n.startsWith(prefix)));
  return { config: fx.config, name: fx.name, weights };
}

export function createWorkerModel(spec: ExtractorWorkerSpec): WorkerModel {
  const store = createParams();
  const fx = createExtractor(store, spec.config, { name: spec.name });
  restoreParams(store, spec.weights);
  return {
    predict(input: Batch) {
      const e = tf.tidy(() => fx.forward(tf.tensor4d(input.data, input.shape as [number, number, number, number])));
      const data = e.dataSync() as Float32Array;
      e.dispose();
      return { embedding: { data, shape: e.shape } };
    },
    dispose: () => disposeParams(store),
  };
}
