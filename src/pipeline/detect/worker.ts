/**
 * BlazeFace and FaceMesh as one worker-pool model (src/backends/worker-pool.ts), so that the
 * detector's graphs run off the main thread. Each worker loads both graphs from `modelDir` and
 * answers a batch by its shape: [1, 256, 256, 3] is a BlazeFace input (blazefaceInput), [n, 192,
 * 192, 3] are n FaceMesh crops (meshInput). It runs the very functions the in-thread detector
 * runs (executeBlazeface, executeMesh), on the same backend, so both ways give the same numbers.
 *
 * @example
 *   const pool = await createWorkerPool({ module: DETECTOR_WORKER_MODULE, spec: { modelDir }, size: 1 });
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { fileHandler } from '../../backends/fs-io.js';
import type { Batch, WorkerModel } from '../../backends/worker-pool.js';
import { BLAZEFACE_SIZE, executeBlazeface } from './blazeface.js';
import { executeMesh, MESH_SIZE } from './mesh.js';

export const DETECTOR_WORKER_MODULE = fileURLToPath(import.meta.url);

export interface DetectorWorkerSpec {
  /** Folder holding blazeface.json and facemesh.json. */
  modelDir: string;
}

export async function createWorkerModel(spec: DetectorWorkerSpec): Promise<WorkerModel> {
  const [blazeface, mesh] = await Promise.all([
    tf.loadGraphModel(fileHandler(path.join(spec.modelDir, 'blazeface.json'))),
    tf.loadGraphModel(fileHandler(path.join(spec.modelDir, 'facemesh.json'))),
  ]);
  return {
    async predict(input): Promise<Record<string, Batch>> {
      const [n, side] = input.shape;
      if (side === BLAZEFACE_SIZE && n === 1) {
        const { scores, regressors } = await executeBlazeface(blazeface, input.data);
        return { scores: { data: scores, shape: [1, scores.length] }, regressors: { data: regressors, shape: [1, regressors.length] } };
      }
      if (side === MESH_SIZE) {
        const { flags, raw } = await executeMesh(mesh, input.data, n!);
        return { flags: { data: flags, shape: [n!, flags.length / n!] }, raw: { data: raw, shape: [n!, raw.length / n!] } };
      }
      throw new Error(`detector worker: no graph takes a [${input.shape}] input`);
    },
    dispose() {
      blazeface.dispose();
      mesh.dispose();
    },
  };
}
