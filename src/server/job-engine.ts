/**
 * The engine of a job process under `arbex serve`: the same weights, backend and ffmpeg as the
 * server's own engine, built afresh in the job's process (see job-process.ts).
 */
import { fileURLToPath } from 'node:url';
import { initBackend } from '../backends/index.js';
import type { BackendName } from '../backends/index.js';
import type { EngineName } from '../backends/onnx.js';
import { loadFaceModel } from '../model/face-model.js';
import { createEngine } from '../pipeline/engine.js';
import type { Engine } from '../pipeline/types.js';

export interface JobEngineSpec {
  weightsDir: string;
  backend?: BackendName;
  /** Engine of the model's extractor (the server's own choice, so both answer alike). */
  engine?: EngineName;
  /** Model worker threads of the job process. */
  workers: number;
  ffmpegPath: string;
}

/** This module, for `createProcessRunner({ module })`. */
export const JOB_ENGINE_MODULE = fileURLToPath(import.meta.url);

/**
 * @example
 * const runner = createProcessRunner({ module: JOB_ENGINE_MODULE, spec: { weightsDir, workers: 1, ffmpegPath } satisfies JobEngineSpec });
 */
export async function createJobEngine(spec: JobEngineSpec): Promise<Engine> {
  await initBackend(spec.backend, { log: false });
  const model = await loadFaceModel(spec.weightsDir, { workers: spec.workers, engine: spec.engine, log: false });
  return createEngine({ model, settings: { mediaDirs: [], ffmpegPath: spec.ffmpegPath } });
}
