/**
 * The training configuration file: the model's config plus the training settings, plain JSON,
 * validated with messages that name the field, the rule and the value received.
 */
import { configChecks, isObject, type Fail, type Json } from '../validate.js';
import type { AugmentOptions } from '../data/index.js';
import { validateArbexConfig, type ArbexConfig } from '../arbex.js';

export interface TrainConfig {
  /** The ARBEx model (see ArbexConfigInput); resolved and validated. */
  model: ArbexConfig;
  epochs: number;
  batchSize: number;
  /** Batch size of validation and test passes (no gradients, so it can be larger). */
  evalBatchSize: number;
  learningRate: number;
  /** γ: the learning rate is multiplied by it once per epoch. */
  decay: number;
  /** N: most images kept per video / identity group each epoch. */
  perGroup: number;
  /** M: images drawn per class each epoch (an epoch is M·L images); used when sampling is 'balanced'. */
  perClass: number;
  /**
   * 'balanced': the paper's refinement, M images of every class per epoch. 'natural': every
   * training image once per epoch (after the per-group cap), at the data set's class frequencies.
   */
  sampling: 'balanced' | 'natural';
  /** Training augmentation (the model's inputSize is the crop size); false: plain resize. */
  augment: Omit<AugmentOptions, 'size'> | false;
  /**
   * 'arbex': L = λ_cd·L_cd(p) + τ·(λ_a·L_a + λ_c·L_c). 'ce': the ablation baseline, softmax
   * cross-entropy on the primary distribution l only (same network; anchors and attention get
   * no gradient and the best checkpoint is chosen by the primary prediction).
   */
  objective: 'arbex' | 'ce';
  /** 'backbone': train only the head (MLP, anchors, attention) on a frozen extractor. */
  freeze: 'none' | 'backbone';
  /** Inverse-frequency class weights in the class loss, from the training set's counts. */
  classWeights: boolean;
  /** Initial anchors: class means of embeddings of the first training images, or random. */
  anchorInit: 'means' | 'random';
  seed: number;
}

export const TRAIN_DEFAULTS: Omit<TrainConfig, 'model'> = {
  epochs: 30,
  batchSize: 32,
  evalBatchSize: 64,
  learningRate: 3e-4,
  decay: 0.995,
  perGroup: 512,
  perClass: 500,
  sampling: 'balanced',
  augment: {},
  objective: 'arbex',
  freeze: 'none',
  classWeights: false,
  anchorInit: 'means',
  seed: 1,
};

const checks = configChecks('training config');
const fail: Fail = checks.fail;
const { int, positive, oneOf } = checks;

const AUGMENT_KEYS = ['resize', 'flip', 'rotate', 'brightness', 'contrast', 'saturation', 'noise'] as const;

function augment(v: unknown): TrainConfig['augment'] {
  if (v === false) return false;
  if (!isObject(v)) fail('augment', 'must be an object or false', v);
  const out: Json = {};
  for (const [key, value] of Object.entries(v)) {
    if (!(AUGMENT_KEYS as readonly string[]).includes(key)) fail(`augment.${key}`, `is not an augmentation setting (${AUGMENT_KEYS.join(', ')})`, value);
    if (key === 'resize') out[key] = int('augment.resize', value, 1);
    else if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(`augment.${key}`, 'must be a finite number >= 0', value);
    else out[key] = value;
  }
  if (typeof out.flip === 'number' && out.flip > 1) fail('augment.flip', 'is a probability, at most 1', out.flip);
  return out as TrainConfig['augment'];
}

/**
 * Validates a training config file's JSON. Loss settings (`lambdas`, `labelSmoothing`) may be
 * given at the top level for convenience; they are written into the model's head config, which
 * is what gets saved with the weights.
 *
 * @example
 * const cfg = validateTrainConfig({ model: { classes, extractor: 'lite' }, epochs: 20, lambdas: { a: 0.1 } });
 */
export function validateTrainConfig(json: unknown): TrainConfig {
  if (!isObject(json)) fail('', 'must be a JSON object', json);
  const known = [...Object.keys(TRAIN_DEFAULTS), 'model', 'lambdas', 'labelSmoothing', '$comment'];
  for (const key of Object.keys(json)) if (!known.includes(key)) throw new Error(`training config: unknown key "${key}" (known: ${known.join(', ')})`);
  if (!isObject(json.model)) fail('model', 'must be an ARBEx model config object ({ classes, extractor, head })', json.model);

  const head: Json = isObject(json.model.head) ? { ...json.model.head } : {};
  const loss: Json = isObject(head.loss) ? { ...head.loss } : {};
  if (json.lambdas !== undefined) {
    if (!isObject(json.lambdas)) fail('lambdas', 'must be an object { cd, a, c }', json.lambdas);
    for (const [key, value] of Object.entries(json.lambdas)) {
      const name = { cd: 'lambdaCd', a: 'lambdaA', c: 'lambdaC' }[key];
      if (!name) fail(`lambdas.${key}`, 'is not a loss weight (cd, a, c)', value);
      loss[name] = value;
    }
  }
  if (json.labelSmoothing !== undefined) loss.labelSmoothing = json.labelSmoothing;
  let model: ArbexConfig;
  try {
    model = validateArbexConfig({ ...json.model, head: { ...head, loss } });
  } catch (e) {
    throw new Error(`training config: model: ${(e as Error).message}`);
  }

  const d = TRAIN_DEFAULTS;
  const bool = (field: string, v: unknown) => (typeof v === 'boolean' ? v : fail(field, 'must be true or false', v));
  const decay = positive('decay', json.decay ?? d.decay);
  if (decay > 1) fail('decay', 'must be at most 1 (a per-epoch multiplier of the learning rate)', decay);
  const cfg: TrainConfig = {
    model,
    epochs: int('epochs', json.epochs ?? d.epochs, 1),
    batchSize: int('batchSize', json.batchSize ?? d.batchSize, 2),
    evalBatchSize: int('evalBatchSize', json.evalBatchSize ?? d.evalBatchSize, 1),
    learningRate: positive('learningRate', json.learningRate ?? d.learningRate),
    decay,
    perGroup: int('perGroup', json.perGroup ?? d.perGroup, 1),
    perClass: int('perClass', json.perClass ?? d.perClass, 1),
    sampling: oneOf('sampling', json.sampling ?? d.sampling, ['balanced', 'natural'] as const),
    augment: augment(json.augment ?? d.augment),
    objective: oneOf('objective', json.objective ?? d.objective, ['arbex', 'ce'] as const),
    freeze: oneOf('freeze', json.freeze ?? d.freeze, ['none', 'backbone'] as const),
    classWeights: bool('classWeights', json.classWeights ?? d.classWeights),
    anchorInit: oneOf('anchorInit', json.anchorInit ?? d.anchorInit, ['means', 'random'] as const),
    seed: int('seed', json.seed ?? d.seed, 0),
  };
  if (cfg.augment && cfg.augment.resize !== undefined && cfg.augment.resize < model.extractor.inputSize) {
    fail('augment.resize', `must be at least the model's inputSize ${model.extractor.inputSize}`, cfg.augment.resize);
  }
  return cfg;
}
