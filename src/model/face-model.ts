/**
 * A model directory served to the product as a `FaceModel`: in this thread, or in a pool of
 * worker threads each holding its own copy (arbex-worker.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../backends/index.js';
import { chooseEngine, type EngineName } from '../backends/onnx.js';
import { createWorkerPool, type Batch } from '../backends/worker-pool.js';
import { createModelRunner, engineFor, loadArbex, type PredictionBatches } from './arbex.js';
import { ARBEX_WORKER_MODULE, arbexWorkerSpec } from './arbex-worker.js';
import type { FaceModel, FacePrediction } from './types.js';

/** Rows of the dense batches → FacePrediction objects. */
export function toPredictions(b: PredictionBatches, classes: readonly string[]): FacePrediction[] {
  const n = b.corrected.shape[0]!;
  const L = classes.length;
  // t_g has L columns, or none when the head has no anchors.
  const G = b.anchorSimilarity.shape[1] ?? 0;
  const row = (x: Batch, i: number, w: number) => Array.from(x.data.subarray(i * w, (i + 1) * w));
  return Array.from({ length: n }, (_, i) => {
    const corrected = row(b.corrected, i, L);
    let labelIndex = 0;
    for (let k = 1; k < L; k++) if (corrected[k]! > corrected[labelIndex]!) labelIndex = k;
    return {
      primary: row(b.primary, i, L),
      corrected,
      primaryConfidence: b.primaryConfidence.data[i]!,
      confidence: b.confidence.data[i]!,
      anchorSimilarity: row(b.anchorSimilarity, i, G),
      labelIndex,
      label: classes[labelIndex]!,
    };
  });
}

/** RGB byte crops → one float batch in [0, 1], checking every crop's size. */
export function cropsToBatch(crops: Uint8Array[], inputSize: number): Batch {
  const per = inputSize * inputSize * 3;
  const data = new Float32Array(crops.length * per);
  crops.forEach((c, i) => {
    if (c.length !== per) throw new Error(`crop ${i}: expected ${inputSize}x${inputSize}x3 = ${per} bytes, got ${c.length}`);
    for (let k = 0; k < per; k++) data[i * per + k] = c[k]! / 255;
  });
  return { data, shape: [crops.length, inputSize, inputSize, 3] };
}

export interface FaceModelOptions {
  /** Worker threads, each with its own copy of the model; 0 runs in this thread. */
  workers: number;
  /** Backend of the workers; default: the backend this thread runs (so both ways agree). */
  backend?: BackendName;
  /**
   * Forced engine of the extractor (settings.engine, from ARBEX_ENGINE). Default: onnx
   * (onnxruntime-node) for a cnn extractor when it loads, else tfjs with one log line saying why.
   * The head always runs on tfjs.
   */
  engine?: EngineName;
  /** Where the engine fallback line goes (default: stderr); false silences it. */
  log?: ((line: string) => void) | false;
}

/**
 * Loads a model directory as the product's FaceModel.
 *
 * @example
 * const model = await loadFaceModel('weights/fer', { workers: 2 });
 * const [face] = await model.predict([crop]);   // crop: inputSize² x 3 RGB bytes
 * console.log(face.label, face.confidence);
 * model.dispose();
 */
export async function loadFaceModel(dir: string, options: Partial<FaceModelOptions> = {}): Promise<FaceModel> {
  const { workers, backend } = { workers: 0, ...options };
  if (!Number.isInteger(workers) || workers < 0) throw new Error(`workers must be an integer >= 0 (got ${workers})`);
  const model = await loadArbex(dir);
  const { classes } = model.config;
  const inputSize = model.config.extractor.inputSize;
  const cropTemplate = model.config.crop?.template;
  let engine: EngineName;
  try {
    // A tfjs-only extractor never loads onnxruntime-node unless onnx is forced (which then fails).
    const wanted = options.engine ?? (model.config.extractor.kind === 'cnn' ? undefined : 'tfjs');
    engine = engineFor(model.config, (await chooseEngine(wanted, { log: options.log })).name, options.engine === 'onnx');
  } catch (e) {
    model.dispose();
    throw e;
  }
  /** The FaceModel over one way of running a batch of crops (in this thread or in the pool). */
  const faceModel = (run: (batch: ReturnType<typeof cropsToBatch>) => Promise<PredictionBatches>, dispose: () => void): FaceModel => ({
    classes,
    inputSize,
    cropTemplate,
    engine,
    async predict(crops) {
      if (crops.length === 0) return [];
      return toPredictions(await run(cropsToBatch(crops, inputSize)), classes);
    },
    dispose,
  });
  if (workers === 0) {
    let runner;
    try {
      runner = await createModelRunner(model, engine);
    } catch (e) {
      model.dispose();
      throw e;
    }
    const ready = runner;
    return faceModel((batch) => ready.predict(batch), () => void ready.dispose().finally(() => model.dispose()));
  }
  const spec = arbexWorkerSpec(model, engine);
  model.dispose();
  const current = tf.getBackend();
  const pool = await createWorkerPool({
    module: ARBEX_WORKER_MODULE,
    spec,
    size: workers,
    backend: backend ?? (current === 'tensorflow' || current === 'cpu' ? current : 'wasm'),
  });
  return faceModel(async (batch) => (await pool.predict(batch)) as PredictionBatches, () => void pool.close());
}
