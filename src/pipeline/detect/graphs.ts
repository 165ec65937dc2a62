/**
 * Where the detector's two graphs (BlazeFace, FaceMesh) run: in this thread, or in worker threads
 * shared by every detector of the process (the engine's live streams and labelling). Everything
 * else of detection (input warps, anchor decoding, NMS, tracking) stays with the detector, so the
 * two ways differ only in the thread that runs the same graph on the same floats.
 *
 * @example
 *   const graphs = await startDetectorWorkers({ size: 1 });
 *   const a = await createFaceDetector({ detectEvery: 25 }, graphs); // one per stream
 *   const b = await createFaceDetector({ detectEvery: 25 }, graphs);
 *   ...; a.dispose(); b.dispose(); await graphs.dispose();
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../../backends/index.js';
import { fileHandler } from '../../backends/fs-io.js';
import { createWorkerPool } from '../../backends/worker-pool.js';
import { BLAZEFACE_SIZE, executeBlazeface, type BlazefaceRaw } from './blazeface.js';
import { executeMesh, MESH_SIZE, type MeshRaw } from './mesh.js';
import { DETECTOR_WORKER_MODULE, type DetectorWorkerSpec } from './worker.js';

/** The detector's graphs behind one interface: raw outputs for inputs already warped. */
export interface DetectorGraphs {
  /** BlazeFace on one blazefaceInput() (256 x 256 x 3 floats). */
  blazeface(pixels: Float32Array): Promise<BlazefaceRaw>;
  /** FaceMesh on `count` meshInput() crops (count x 192 x 192 x 3 floats). */
  mesh(pixels: Float32Array, count: number): Promise<MeshRaw>;
  dispose(): Promise<void>;
}

export function defaultModelDir(): string {
  // The package exports no package.json; its node entry lives in <package>/dist/.
  const entry = createRequire(import.meta.url).resolve('@vladmandic/human');
  return path.join(path.dirname(entry), '..', 'models');
}

/** Loads both graphs (from disk, no network) into this thread's tfjs backend. */
export async function loadDetectorGraphs(modelDir = defaultModelDir()): Promise<DetectorGraphs> {
  await initBackend();
  const [blazeface, mesh] = await Promise.all([
    tf.loadGraphModel(fileHandler(path.join(modelDir, 'blazeface.json'))),
    tf.loadGraphModel(fileHandler(path.join(modelDir, 'facemesh.json'))),
  ]);
  return {
    blazeface: (pixels) => executeBlazeface(blazeface, pixels),
    mesh: (pixels, count) => executeMesh(mesh, pixels, count),
    async dispose() {
      blazeface.dispose();
      mesh.dispose();
    },
  };
}

export interface DetectorWorkersOptions {
  modelDir: string;
  /** Worker threads; requests queue in each, FIFO, and go round-robin across them. */
  size: number;
  /** Backend of the workers; default: the one this thread runs, so that both ways agree. */
  backend?: BackendName;
}

/**
 * Starts worker threads holding both graphs (worker.ts, through the project's worker pool) and
 * waits until each has loaded them. Idle workers do not keep the process alive.
 */
export async function startDetectorWorkers(options: Partial<DetectorWorkersOptions> = {}): Promise<DetectorGraphs> {
  const { modelDir, size, backend } = { modelDir: defaultModelDir(), size: 1, ...options };
  const current = (await initBackend()).name;
  const pool = await createWorkerPool({
    module: DETECTOR_WORKER_MODULE,
    spec: { modelDir } satisfies DetectorWorkerSpec,
    size,
    backend: backend ?? current,
  });
  return {
    async blazeface(pixels) {
      const out = await pool.predict({ data: pixels, shape: [1, BLAZEFACE_SIZE, BLAZEFACE_SIZE, 3] });
      return { scores: out.scores!.data, regressors: out.regressors!.data };
    },
    async mesh(pixels, count) {
      const out = await pool.predict({ data: pixels, shape: [count, MESH_SIZE, MESH_SIZE, 3] });
      return { flags: out.flags!.data, raw: out.raw!.data };
    },
    dispose: () => pool.close(),
  };
}
