/**
 * The whole ARBEx model (docs/MODEL-SPEC.md §1–5): the POSTER++-style extractor f_θ and the
 * reliability-balancing head h_φ in one parameter store, configured by one plain-JSON object,
 * saved as one model directory, and served to the product as a `FaceModel`.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../env.js';
import { createWorkerPool, type Batch } from '../backends/worker-pool.js';
import { createExtractor, extractorConfig, validateExtractorConfig, PRESETS, type Extractor, type ExtractorConfig, type PresetName } from './extractor/index.js';
import { createHead, validateHeadConfig, type ForwardOptions, type Head, type HeadConfig, type HeadOutput } from './head/index.js';
import { INFER, type Ctx } from './nn/layers.js';
import { createParams, disposeParams, type ParamStore } from './nn/params.js';
import type { CropTemplate, FaceModel, FacePrediction } from './types.js';
import { loadWeights, readModelConfig, saveModel } from './weights/index.js';
import { isObject } from './validate.js';

/**
 * The JSON a user writes. `extractor` is a preset name, a preset plus overrides
 * (`{ "preset": "lite", "inputSize": 96 }`), or a complete ExtractorConfig (no `preset` key).
 * `head` is a head config without `classes` and `embedDim`, which come from here and from the
 * extractor.
 */
export interface ArbexConfigInput {
  classes: string[];
  extractor: PresetName | ({ preset: PresetName } & Record<string, unknown>) | ExtractorConfig;
  head?: Record<string, unknown>;
  /** The framing of the crops the model takes (default: the ArcFace template). */
  crop?: { template: CropTemplate };
}

/** The validated, fully resolved configuration: what config.json of a model directory holds. */
export interface ArbexConfig {
  classes: string[];
  extractor: ExtractorConfig;
  head: HeadConfig;
  /** Absent: crops are aligned to the ArcFace template. */
  crop?: { template: CropTemplate };
}

function fail(field: string, message: string): never {
  throw new Error(`arbex config: ${field} ${message}`);
}

/**
 * Checks an ARBEx configuration and resolves presets and head defaults. Errors name the field.
 *
 * @example
 * const config = validateArbexConfig({ classes: ['Neutral', 'Happiness'], extractor: 'lite', head: { anchorsPerClass: 8 } });
 * config.head.embedDim === config.extractor.embedDim; // true
 */
export function validateArbexConfig(json: unknown): ArbexConfig {
  if (!isObject(json)) fail('', `must be a JSON object (got ${JSON.stringify(json)})`);
  for (const key of Object.keys(json)) if (!['classes', 'extractor', 'head', 'crop'].includes(key)) fail(`"${key}"`, 'is not a known key (classes, extractor, head, crop)');
  const { classes } = json;
  if (!Array.isArray(classes) || classes.length < 2 || !classes.every((c) => typeof c === 'string' && c !== '')) {
    fail('classes', `must be a list of at least 2 non-empty strings (got ${JSON.stringify(classes)})`);
  }
  const extractor = resolveExtractor(json.extractor);
  const head = json.head ?? {};
  if (!isObject(head)) fail('head', `must be an object (got ${JSON.stringify(head)})`);
  // A saved config carries the derived fields; they must agree with the ones derived here.
  if (head.classes !== undefined && JSON.stringify(head.classes) !== JSON.stringify(classes)) fail('head.classes', 'must be left out (it is taken from classes)');
  if (head.embedDim !== undefined && head.embedDim !== extractor.embedDim) fail('head.embedDim', `must be left out (it is the extractor's embedDim, ${extractor.embedDim})`);
  let headConfig: HeadConfig;
  try {
    headConfig = validateHeadConfig({ ...head, classes, embedDim: extractor.embedDim });
  } catch (e) {
    throw new Error(`arbex config: ${(e as Error).message}`);
  }
  const crop = json.crop === undefined ? undefined : { template: validateCropTemplate(json.crop) };
  return { classes: [...classes], extractor, head: headConfig, ...(crop && { crop }) };
}

function validateCropTemplate(crop: unknown): CropTemplate {
  const template = isObject(crop) ? crop.template : undefined;
  const point = (p: unknown) => Array.isArray(p) && p.length === 2 && p.every((v) => typeof v === 'number' && v >= 0 && v <= 1);
  if (!Array.isArray(template) || template.length !== 5 || !template.every(point)) {
    fail('crop.template', `must be five [x, y] points with x and y in [0, 1] (got ${JSON.stringify(template)})`);
  }
  return template.map(([x, y]) => [x, y] as const);
}

function resolveExtractor(v: unknown): ExtractorConfig {
  try {
    if (typeof v === 'string') {
      if (!(v in PRESETS)) fail('extractor', `"${v}" is not a preset (known: ${Object.keys(PRESETS).join(', ')})`);
      return extractorConfig(v as PresetName);
    }
    if (!isObject(v)) fail('extractor', `must be a preset name or an object (got ${JSON.stringify(v)})`);
    if (v.preset === undefined) return validateExtractorConfig(v);
    const { preset, ...overrides } = v;
    if (typeof preset !== 'string' || !(preset in PRESETS)) fail('extractor.preset', `must be one of ${Object.keys(PRESETS).join(', ')} (got ${JSON.stringify(preset)})`);
    const known = Object.keys(PRESETS[preset as PresetName]);
    for (const key of Object.keys(overrides)) if (!known.includes(key)) fail(`extractor.${key}`, 'is not an extractor setting');
    return extractorConfig(preset as PresetName, overrides);
  } catch (e) {
    const msg = (e as Error).message;
    throw msg.startsWith('arbex config:') ? e : new Error(`arbex config: ${msg}`);
  }
}

export interface Arbex {
  readonly config: ArbexConfig;
  readonly store: ParamStore;
  readonly extractor: Extractor;
  readonly head: Head;
  /** Images [B, S, S, 3] in [0, 1] → embeddings e [B, D]. */
  embed(images: tf.Tensor4D, ctx?: Ctx): tf.Tensor2D;
  /** Images → every head output. Not tidied: call inside tf.tidy or dispose the outputs. */
  forward(images: tf.Tensor4D, ctx?: Ctx, options?: Partial<ForwardOptions>): HeadOutput;
  /** Releases every variable. */
  dispose(): void;
}

export interface ArbexOptions {
  /** Seed of the head's initial values (the extractor uses the store's own generator). */
  seed: number;
}

/**
 * Builds extractor and head in `store` (parameter prefixes `extractor.` and `head.`).
 *
 * @example
 * const model = createArbex(createParams(1), validateArbexConfig({ classes, extractor: 'lite' }), { seed: 1 });
 * const out = tf.tidy(() => model.forward(images, { training: false }).corrected);
 */
export function createArbex(store: ParamStore, config: ArbexConfig, options: Partial<ArbexOptions> = {}): Arbex {
  const { seed } = { seed: 1, ...options };
  const cfg = validateArbexConfig(config);
  const extractor = createExtractor(store, cfg.extractor, { name: 'extractor' });
  const head = createHead(store, cfg.head, { name: 'head', seed });
  const embed = (images: tf.Tensor4D, ctx: Ctx = INFER) => extractor.forward(images, ctx);
  return {
    config: cfg,
    store,
    extractor,
    head,
    embed,
    forward: (images, ctx = INFER, fwd = {}) => head.forward(embed(images, ctx), ctx, fwd),
    dispose: () => disposeParams(store),
  };
}

/** Writes config.json + model.json + weights.bin (every variable, BatchNorm statistics included). */
export function saveArbex(dir: string, model: Arbex): Promise<void> {
  return saveModel(dir, { config: model.config, store: model.store });
}

/** Rebuilds a model from a directory written by saveArbex. */
export async function loadArbex(dir: string): Promise<Arbex> {
  let config: ArbexConfig;
  try {
    config = validateArbexConfig(await readModelConfig(dir));
  } catch (e) {
    throw new Error(`${dir}: ${(e as Error).message}`);
  }
  const model = createArbex(createParams(1), config);
  try {
    await loadWeights(dir, model.store);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/** The per-face numbers of FacePrediction as dense batches: one code path for both runners. */
export type PredictionBatches = Record<'primary' | 'corrected' | 'primaryConfidence' | 'confidence' | 'anchorSimilarity', Batch>;

/**
 * Inference (τ = 1, BatchNorm moving statistics, no dropout) on float pixels in [0, 1].
 * Every output row depends only on its own input row.
 */
export function predictBatches(model: Arbex, input: Batch): PredictionBatches {
  const parts = tf.tidy(() => {
    const x = tf.tensor4d(input.data, input.shape as [number, number, number, number]);
    const out = model.forward(x, INFER, { trust: 1 });
    const B = input.shape[0]!;
    return {
      primary: out.primary,
      corrected: out.corrected,
      primaryConfidence: out.confidencePrimary,
      confidence: out.confidence,
      anchorSimilarity: out.tg ?? tf.zeros([B, 0]),
    };
  });
  const result = {} as PredictionBatches;
  for (const [key, t] of Object.entries(parts)) {
    result[key as keyof PredictionBatches] = { data: t.dataSync() as Float32Array, shape: t.shape };
    t.dispose();
  }
  return result;
}

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
  if (workers === 0) {
    return {
      classes,
      inputSize,
      cropTemplate,
      async predict(crops) {
        if (crops.length === 0) return [];
        return toPredictions(predictBatches(model, cropsToBatch(crops, inputSize)), classes);
      },
      dispose: () => model.dispose(),
    };
  }
  const { ARBEX_WORKER_MODULE, arbexWorkerSpec } = await import('./arbex-worker.js');
  const spec = arbexWorkerSpec(model);
  model.dispose();
  const current = tf.getBackend();
  const pool = await createWorkerPool({
    module: ARBEX_WORKER_MODULE,
    spec,
    size: workers,
    backend: backend ?? (current === 'tensorflow' || current === 'cpu' ? current : 'wasm'),
  });
  return {
    classes,
    inputSize,
    cropTemplate,
    async predict(crops) {
      if (crops.length === 0) return [];
      return toPredictions((await pool.predict(cropsToBatch(crops, inputSize))) as PredictionBatches, classes);
    },
    dispose: () => void pool.close(),
  };
}
