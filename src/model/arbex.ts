/**
 * The whole ARBEx model (docs/MODEL-SPEC.md §1–5): the POSTER++-style extractor f_θ and the
 * reliability-balancing head h_φ in one parameter store, configured by one plain-JSON object,
 * saved as one model directory, and served to the product as a `FaceModel` by face-model.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { createOnnxEngine, type EngineName, type OnnxEngine } from '../backends/onnx.js';
import type { Batch } from '../backends/worker-pool.js';
import { cnnGraph } from './extractor/cnn-graph.js';
import { createExtractor, extractorConfig, validateExtractorConfig, PRESETS, type Extractor, type ExtractorConfig, type PresetName } from './extractor/index.js';
import { createHead, validateHeadConfig, type ForwardOptions, type Head, type HeadConfig, type HeadOutput } from './head/index.js';
import { INFER, type Ctx } from './nn/layers.js';
import { createParams, disposeParams, type ParamStore } from './nn/params.js';
import type { CropTemplate } from './types.js';
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

/** The head's inference outputs (τ = 1) for embeddings e [B, D], as dense batches. */
function headBatches(model: Arbex, e: () => tf.Tensor2D): PredictionBatches {
  const parts = tf.tidy(() => {
    const embedding = e();
    const out = model.head.forward(embedding, INFER, { trust: 1 });
    const B = embedding.shape[0];
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

/**
 * Inference (τ = 1, BatchNorm moving statistics, no dropout) on float pixels in [0, 1], all on
 * tfjs. Every output row depends only on its own input row.
 */
export function predictBatches(model: Arbex, input: Batch): PredictionBatches {
  return headBatches(model, () => model.embed(tf.tensor4d(input.data, input.shape as [number, number, number, number]), INFER));
}

/**
 * A model's inference with its extractor on a chosen engine: 'onnx' runs the extractor in
 * onnxruntime-node (cnn extractors only) and the head on tfjs; 'tfjs' is predictBatches.
 */
export interface ModelRunner {
  readonly engine: EngineName;
  predict(input: Batch): Promise<PredictionBatches>;
  /** Closes the ONNX session; the model itself stays the caller's. */
  dispose(): Promise<void>;
}

/**
 * Opens `model` for inference on `engine`. The ONNX graph is built from the weights the model
 * holds now. Throws for 'onnx' with an extractor the ONNX graph does not cover (only "cnn").
 *
 * @example
 *   const runner = await createModelRunner(model, (await chooseEngine(settings.engine)).name);
 *   const out = await runner.predict(cropsToBatch(crops, 48));
 */
export async function createModelRunner(model: Arbex, engine: EngineName, options: { threads?: number } = {}): Promise<ModelRunner> {
  if (engine === 'tfjs') return { engine, predict: async (input) => predictBatches(model, input), dispose: async () => {} };
  const cfg = model.config.extractor;
  if (cfg.kind !== 'cnn') throw new Error(`inference engine "onnx" runs only the "cnn" extractor (this model's is "${cfg.kind}"); use ARBEX_ENGINE=tfjs`);
  const onnx: OnnxEngine = await createOnnxEngine(cnnGraph(model.store, cfg, model.extractor.name), { threads: options.threads ?? 1 });
  return {
    engine,
    async predict(input) {
      const e = await onnx.run(input);
      return headBatches(model, () => tf.tensor2d(e.data, e.shape as [number, number]));
    },
    dispose: () => onnx.dispose(),
  };
}

/** The engine a model runs on: onnx when chosen and the extractor is one it covers, else tfjs. */
export function engineFor(config: ArbexConfig, chosen: EngineName, forced: boolean): EngineName {
  if (chosen === 'onnx' && config.extractor.kind !== 'cnn' && !forced) return 'tfjs';
  return chosen;
}
