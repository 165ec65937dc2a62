/**
 * The ARBEx training loop (docs/MODEL-SPEC.md §6–7): per epoch a refined, class-balanced draw of the
 * training set, augmentation, Adam with lr₀·γ^epoch, the trust ramp τ 0 → 1 over the run, the
 * three losses (or plain cross-entropy for the baseline), validation, and checkpoints:
 *
 *   <out>/train-config.json   the validated training config (model config resolved)
 *   <out>/last/               checkpoint after every epoch (and on stop): model, Adam, state
 *   <out>/best/               model directory of the best validation macro F1 + metrics.json
 *   <out>/metrics.jsonl       one JSON line per epoch
 *   <out>/curves.png          training loss and validation curves
 *
 * Resume is exact: `last/` holds the weights, Adam's moments and step, the position and the
 * history (checkpoint.ts), and every random draw is a function of the seed and the position,
 * so k epochs + stop + resume to N gives the weights of N epochs in one go.
 *
 * With `freeze: "backbone"` and a cache folder, the extractor's embeddings come from the
 * feature cache (feature-cache.ts): training batches when the augmentation is at most a flip,
 * validation and the anchor initialisation always.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createArbex, type Arbex } from '../arbex.js';
import { loadWeights } from '../weights/index.js';
import { AUGMENT_DEFAULTS, createAugmenter, type Augmenter } from '../data/augment.js';
import { createBatchLoader, epochRandom } from '../data/loader.js';
import { refineSampler, type DataRecord, type Dataset } from '../data/index.js';
import { classDistributionLoss, headLosses, inverseFrequencyWeights, learningRateAt, trustAt } from '../head/index.js';
import { INFER, type Ctx } from '../nn/layers.js';
import { createParams, seededRandom, trainableVars } from '../nn/params.js';
import { createAdam, type Adam } from './adam.js';
import { readCheckpoint, writeCheckpoint, type EpochRecord, type TrainState } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import { writeCurvesPng, type Panel } from './curves.js';
import { evaluate, type Evaluation } from './evaluate.js';
import { openFeatureCache, type FeatureCache } from './feature-cache.js';
import { createProgress, formatDuration, type Progress } from './progress.js';

export interface StepInfo {
  epoch: number;
  step: number;
  loss: number;
  trust: number;
}

export interface TrainOptions {
  config: TrainConfig;
  train: Dataset;
  /** Validation set; without it `best/` follows the last epoch. */
  val?: Dataset;
  out: string;
  /** Continue from `<out>/last/` (the config must be the run's own). */
  resume: boolean;
  /**
   * A model directory whose extractor weights start a new run (e.g. a trained or imported
   * extractor under a new head; with `freeze: "backbone"` only the head then trains).
   */
  init?: string;
  /**
   * Root folder of the feature cache of a frozen backbone (used only with `freeze: "backbone"`);
   * absent: every pass runs the extractor.
   */
  cache?: string;
  /** Worker threads that build a missing feature cache (0: this thread). */
  cacheWorkers?: number;
  /** Aborting stops the run at the end of the current step, after saving `<out>/last/`. */
  signal?: AbortSignal;
  log: (line: string) => void;
  progress: Progress;
  /** Called after every step (tests use it to stop a run part-way). */
  onStep?: (info: StepInfo) => void;
}

export interface TrainResult {
  state: TrainState;
  /** True when the run ended early on the signal. */
  stopped: boolean;
  epochs: EpochRecord[];
}

/** A training batch: pixels for the extractor, or the frozen extractor's cached embeddings. */
interface StepBatch {
  labels: Int32Array;
  images?: Float32Array;
  embeddings?: Float32Array;
}

async function readEpochRecords(file: string): Promise<EpochRecord[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as EpochRecord);
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

/** Loss of the CE baseline: the class loss on the primary distribution l alone. */
function ceLoss(model: Arbex, out: ReturnType<Arbex['forward']>, y: tf.Tensor1D): tf.Scalar {
  const { labelSmoothing, classWeights } = model.config.head.loss;
  return classDistributionLoss(out.primary, y, { labelSmoothing, classWeights, logEps: model.config.head.epsilon.log });
}

/**
 * Variables the step trains, by parameter name. variableGrads rejects a variable the loss does
 * not reach, so the parts the objective leaves out are excluded here, not merely given zero
 * gradients.
 */
function stepVariables(model: Arbex, config: TrainConfig): Map<string, tf.Variable> {
  const names = new Map([...model.store.vars].map(([n, v]) => [v, n]));
  const skip = (name: string) =>
    (name === 'head.anchors' && (config.objective === 'ce' || model.config.head.anchorsPerClass === 0)) ||
    (config.objective === 'ce' && name.startsWith('head.attn.'));
  const vars = config.freeze === 'backbone' ? model.head.variables() : trainableVars(model.store);
  return new Map(vars.map((v) => [names.get(v)!, v] as const).filter(([name]) => !skip(name)));
}

/** The generator of step s's dropout and stochastic-depth masks. */
function stepRandom(seed: number, step: number): () => number {
  return seededRandom((Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b)) >>> 0);
}

/** One optimisation step; returns [total, cd, a, c] before the update. */
function trainStep(
  model: Arbex,
  config: TrainConfig,
  vars: Map<string, tf.Variable>,
  adam: Adam,
  batch: StepBatch,
  step: { trust: number; learningRate: number; random: () => number },
): number[] {
  const S = model.config.extractor.inputSize;
  const n = batch.labels.length;
  const { trust } = step;
  const ctx: Ctx = { training: true, random: step.random };
  const kept: tf.Tensor[] = [];
  try {
    return tf.tidy(() => {
      const y = tf.tensor1d(batch.labels, 'int32');
      const x = batch.images && tf.tensor4d(batch.images, [n, S, S, 3]);
      // Frozen backbone: the extractor runs as at inference and stays off the gradient tape.
      const e = batch.embeddings ? tf.tensor2d(batch.embeddings, [n, model.config.head.embedDim]) : config.freeze === 'backbone' ? model.embed(x!, INFER) : undefined;
      const { value, grads } = tf.variableGrads(() => {
        const out = e ? model.head.forward(e, ctx, { trust }) : model.forward(x!, ctx, { trust });
        if (config.objective === 'ce') {
          const loss = ceLoss(model, out, y);
          kept.push(tf.keep(loss.clone()), tf.keep(tf.scalar(0)), tf.keep(tf.scalar(0)));
          return loss;
        }
        const losses = headLosses(model.head.config, model.head.anchors, out, y, trust);
        // variableGrads disposes everything but the loss; keep the parts to report them.
        kept.push(tf.keep(losses.classDistribution), tf.keep(losses.anchor), tf.keep(losses.center));
        return losses.total;
      }, [...vars.values()]);
      adam.apply(new Map([...vars].map(([name, v]) => [name, grads[v.name]!])), step.learningRate);
      return Array.from(tf.stack([value, ...kept]).dataSync());
    });
  } finally {
    tf.dispose(kept);
  }
}

/** Anchors start at the class means of embeddings of the first images (docs/MODEL-SPEC.md §6). */
async function initAnchors(model: Arbex, dataset: Dataset, records: DataRecord[], batchSize: number, features: FeatureCache | undefined): Promise<void> {
  const S = model.config.extractor.inputSize;
  const parts: tf.Tensor2D[] = [];
  try {
    if (features) parts.push(tf.tensor2d(features.gather(records), [records.length, features.dim]));
    else {
      const loader = createBatchLoader(dataset, { augmenter: createAugmenter({ size: S }), batchSize, train: false, shuffle: false });
      for await (const b of loader.batches(records)) parts.push(tf.tidy(() => model.embed(tf.tensor4d(b.images, [b.count, S, S, 3]), INFER)));
    }
    const all = tf.concat(parts);
    model.head.initAnchorsFromMeans(all, records.map((r) => r.label));
    all.dispose();
  } finally {
    tf.dispose(parts);
  }
}

/** Augmentations that change an image's pixels beyond a flip (resize aside). */
const AUGMENT_KEYS = ['rotate', 'brightness', 'contrast', 'saturation', 'noise'] as const;

/**
 * Why the training batches of a frozen backbone cannot come from the feature cache, or undefined
 * when they can: the augmentation must be at most a flip (a mirrored image's embedding is cached
 * too); random crops, rotation, colour jitter and noise change the pixels.
 */
function cacheBlocker(config: TrainConfig, augmenter: Augmenter): string | undefined {
  const augment = config.augment;
  if (!augment) return undefined;
  const a = { ...AUGMENT_DEFAULTS, ...augment };
  const pixels = AUGMENT_KEYS.filter((k) => a[k] > 0).map((k) => `${k} ${a[k]}`);
  if (augmenter.resize !== augmenter.size) pixels.unshift(`resize ${augmenter.resize} (random crops)`);
  if (pixels.length === 0) return undefined;
  const left = (['resize', ...AUGMENT_KEYS] as const).filter((k) => !(k in augment));
  return (
    `augment ${pixels.join(', ')} changes pixels; only flip can be cached: give "augment": { "resize": ${augmenter.size}, ` +
    `"rotate": 0, "brightness": 0, "contrast": 0, "saturation": 0, "noise": 0, "flip": ... } or false` +
    (left.length ? ` (${left.join(', ')} left out take their defaults)` : '')
  );
}

/** Training batches of one epoch from cached embeddings, flipped as the loader would flip them. */
function* cachedBatches(features: FeatureCache, augmenter: Augmenter, records: DataRecord[], epoch: number, skip: number, config: TrainConfig): Generator<StepBatch> {
  // The same per-image draws as createBatchLoader: one seed per record, in order.
  const rng = epochRandom(config.seed, epoch);
  const mirrored = records.map(() => augmenter.draw(seededRandom(Math.floor(rng() * 2 ** 32))).flip);
  for (let i = skip; i + config.batchSize <= records.length; i += config.batchSize) {
    const chunk = records.slice(i, i + config.batchSize);
    yield { labels: Int32Array.from(chunk, (r) => r.label), embeddings: features.gather(chunk, mirrored.slice(i, i + config.batchSize)) };
  }
}

function curvePanels(records: EpochRecord[]): Panel[] {
  const at = (f: (r: EpochRecord) => number | undefined) => records.map((r) => [r.epoch, f(r) ?? NaN] as [number, number]);
  return [
    {
      title: 'training loss (epoch mean)',
      series: [
        { name: 'total', color: '#c0392b', points: at((r) => r.loss) },
        { name: 'class (cd)', color: '#2471a3', points: at((r) => r.lossCd) },
      ],
    },
    {
      title: 'validation',
      yRange: [0, 1],
      series: [
        { name: 'accuracy', color: '#1e8449', points: at((r) => r.val?.accuracy) },
        { name: 'macro F1', color: '#884ea0', points: at((r) => r.val?.macroF1) },
        { name: 'primary F1', color: '#aaa', points: at((r) => r.val?.primaryMacroF1) },
      ],
    },
  ];
}

const newRunning = (): TrainState['running'] => ({ loss: [0, 0, 0, 0], seconds: 0, trust: 0 });

/**
 * Trains (or resumes) a run into `out`.
 *
 * @example
 * const cfg = validateTrainConfig(JSON.parse(await readFile('configs/demo.json', 'utf8')));
 * const train = await openDataSpec(parseDataSpec('folder:data/synth/train,group=prefix'), cfg.model.classes);
 * await trainArbex({ config: cfg, train, out: 'runs/demo', cache: '.cache/features' });
 */
export async function trainArbex(options: Partial<TrainOptions> & Pick<TrainOptions, 'config' | 'train' | 'out'>): Promise<TrainResult> {
  const o: TrainOptions = {
    resume: false,
    log: (line) => process.stderr.write(line + '\n'),
    progress: createProgress({ tty: process.stderr.isTTY === true }),
    ...options,
  };
  const { train, val, out, log } = o;
  const config = structuredClone(o.config);
  const classes = config.model.classes;
  if (train.classes.join('\n') !== classes.join('\n')) throw new Error('training data set classes differ from the model config classes');
  for (const p of train.problems.slice(0, 10)) log(`data: ${p.file}:${p.line} ${p.message}`);
  if (train.problems.length > 10) log(`data: ... ${train.problems.length - 10} more problems`);
  if (train.counts.records === 0) throw new Error('the training data set has no usable images');
  log(`train: ${train.counts.records} images, per class ${classes.map((c, i) => `${c} ${train.counts.perClass[i]}`).join(', ')}`);

  await mkdir(out, { recursive: true });
  const lastDir = path.join(out, 'last');
  const bestDir = path.join(out, 'best');
  const metricsFile = path.join(out, 'metrics.jsonl');
  const configFile = path.join(out, 'train-config.json');

  let model: Arbex;
  let state: TrainState;
  let saved: { step: number; moments: Map<string, tf.Tensor> } | null = null;
  if (o.resume) {
    const first = JSON.parse(await readFile(configFile, 'utf8').catch(() => 'null')) as TrainConfig | null;
    if (!first) throw new Error(`${configFile}: missing; nothing to resume in ${out}`);
    if (JSON.stringify({ ...first, epochs: 0 }) !== JSON.stringify({ ...config, epochs: 0 })) {
      throw new Error(`${out}: the training config differs from the one the run started with (only epochs may change on resume)`);
    }
    const checkpoint = await readCheckpoint(lastDir);
    ({ state, model } = checkpoint);
    saved = checkpoint.optimizer;
    if (!saved) {
      // A checkpoint from before exact resume: no optimizer state and no history inside.
      state.history = (await readEpochRecords(metricsFile)).filter((r) => r.epoch <= state.epoch);
      log(`resume: ${lastDir} holds no optimizer state (an older checkpoint): Adam restarts from zero moments`);
    }
    log(`resume: from epoch ${state.epoch + 1}${state.stepInEpoch ? ` step ${state.stepInEpoch + 1}` : ''} (global step ${state.step})${saved ? `, Adam at step ${saved.step}` : ''}`);
  } else {
    if (config.classWeights) {
      const labels = new Int32Array(train.counts.records);
      let k = 0;
      train.counts.perClass.forEach((n, c) => labels.fill(c, k, (k += n)));
      config.model.head.loss.classWeights = inverseFrequencyWeights(labels, classes.length);
    }
    model = createArbex(createParams(config.seed), config.model, { seed: config.seed });
    if (o.init) {
      await loadWeights(o.init, model.store, { prefix: 'extractor.' });
      log(`init: extractor weights from ${o.init}`);
    }
    state = { epoch: 0, stepInEpoch: 0, step: 0, best: null, running: newRunning(), history: [] };
    await writeAtomic(configFile, JSON.stringify(config, null, 2) + '\n');
  }
  // metrics.jsonl is the checkpoint's history: lines past it belong to work being redone.
  await writeAtomic(metricsFile, state.history.map((r) => JSON.stringify(r) + '\n').join(''));

  const S = model.config.extractor.inputSize;
  const vars = stepVariables(model, config);
  const adam = createAdam(vars);
  let trainFeatures: FeatureCache | undefined;
  let valFeatures: FeatureCache | undefined;
  let stopped = false;
  const epochs: EpochRecord[] = [];
  try {
    if (saved) adam.restore(saved.step, saved.moments);
    const sampler = refineSampler(train, { perGroup: config.perGroup, perClass: config.perClass, seed: config.seed, balance: config.sampling === 'balanced' });
    const augmenter = createAugmenter(config.augment ? { size: S, ...config.augment } : { size: S, resize: S, flip: 0, rotate: 0, brightness: 0, contrast: 0, saturation: 0, noise: 0 });
    const loader = createBatchLoader(train, { augmenter, batchSize: config.batchSize, train: true, shuffle: false, dropLast: true, seed: config.seed, prefetch: 2 });
    log(`model: ${model.extractor.paramCount} extractor + ${model.head.variables().reduce((n, v) => n + v.size, 0)} head parameters; training ${[...vars.values()].reduce((n, v) => n + v.size, 0)} (objective ${config.objective}, freeze ${config.freeze})`);

    if (o.cache !== undefined && config.freeze === 'backbone') {
      const cacheOptions = { model, dir: o.cache, batchSize: config.evalBatchSize, log, progress: o.progress, workers: o.cacheWorkers ?? 0 };
      const blocker = cacheBlocker(config, augmenter);
      if (blocker) log(`cache: training batches run the extractor: ${blocker}`);
      else trainFeatures = await openFeatureCache({ ...cacheOptions, dataset: train, name: 'train' });
      if (val) valFeatures = await openFeatureCache({ ...cacheOptions, dataset: val, name: 'val' });
    }

    for (let epoch = state.epoch; epoch < config.epochs && !stopped; epoch++) {
      const t0 = performance.now();
      const drawn = await sampler.epoch(epoch);
      if (drawn.emptyClasses.length > 0 && epoch === state.epoch) log(`warning: no training images of ${drawn.emptyClasses.map((c) => classes[c]).join(', ')}`);
      const stepsPerEpoch = Math.floor(drawn.records.length / config.batchSize);
      if (stepsPerEpoch < 1) throw new Error(`an epoch has ${drawn.records.length} images, fewer than batchSize ${config.batchSize}`);
      const totalSteps = stepsPerEpoch * config.epochs;
      if (state.step === 0 && config.anchorInit === 'means' && model.config.head.anchorsPerClass > 0 && config.objective === 'arbex') {
        await initAnchors(model, train, drawn.records.slice(0, Math.max(256, 8 * classes.length)), config.evalBatchSize, trainFeatures);
      }
      const learningRate = learningRateAt(epoch, config);
      const records = drawn.records.slice(0, stepsPerEpoch * config.batchSize);
      const skip = state.stepInEpoch * config.batchSize;
      const batches = trainFeatures ? cachedBatches(trainFeatures, augmenter, records, epoch, skip, config) : loader.batches(records, epoch, skip);
      const { running } = state;
      let tick = t0;
      for await (const b of batches) {
        const trust = trustAt(state.step, totalSteps);
        const losses = trainStep(model, config, vars, adam, b, { trust, learningRate, random: stepRandom(config.seed, state.step) });
        if (!losses.every(Number.isFinite)) throw new Error(`loss is not finite at step ${state.step + 1} (${losses.join(', ')})`);
        losses.forEach((v, i) => (running.loss[i]! += v));
        running.trust = trust;
        state.step++;
        state.stepInEpoch++;
        const now = performance.now();
        running.seconds += (now - tick) / 1000;
        tick = now;
        o.progress.update(state.stepInEpoch, stepsPerEpoch, `epoch ${epoch + 1}/${config.epochs} loss ${(running.loss[0]! / state.stepInEpoch).toFixed(4)} τ ${trust.toFixed(2)}`);
        o.onStep?.({ epoch, step: state.step, loss: losses[0]!, trust });
        if (o.signal?.aborted) {
          stopped = true;
          break;
        }
      }
      o.progress.end();
      if (stopped) {
        await writeCheckpoint(lastDir, { model, state, adam });
        log(`stopped: saved ${lastDir} at epoch ${epoch + 1} step ${state.stepInEpoch}/${stepsPerEpoch}; continue with --resume`);
        break;
      }
      let evaluation: Evaluation | undefined;
      if (val) evaluation = await evaluate(model, val, { batchSize: config.evalBatchSize, ...(valFeatures ? { features: valFeatures } : {}) });
      const chosen = evaluation && (config.objective === 'ce' ? evaluation.primary : evaluation.corrected);
      const score = chosen ? chosen.macroF1 : -Infinity;
      const isBest = !state.best || state.best.macroF1 === null || score > state.best.macroF1;
      const n = Math.max(1, state.stepInEpoch);
      const record: EpochRecord = {
        epoch: epoch + 1,
        step: state.step,
        seconds: Math.round((running.seconds + (performance.now() - tick) / 1000) * 10) / 10,
        learningRate,
        trust: running.trust,
        loss: running.loss[0]! / n,
        lossCd: running.loss[1]! / n,
        lossA: running.loss[2]! / n,
        lossC: running.loss[3]! / n,
        val: evaluation
          ? {
              accuracy: evaluation.corrected.accuracy,
              macroF1: evaluation.corrected.macroF1,
              primaryAccuracy: evaluation.primary.accuracy,
              primaryMacroF1: evaluation.primary.macroF1,
              primaryLoss: evaluation.primaryLoss,
            }
          : null,
        best: isBest,
      };
      state = {
        ...state,
        epoch: epoch + 1,
        stepInEpoch: 0,
        best: isBest ? { epoch: epoch + 1, macroF1: chosen?.macroF1 ?? null, accuracy: chosen?.accuracy ?? null } : state.best,
        running: newRunning(),
        history: [...state.history, record],
      };
      // best/ before last/: a crash in between resumes from the previous last/ and redoes this
      // epoch exactly, rewriting best/ the same way.
      if (isBest) await writeCheckpoint(bestDir, { model, state, json: evaluation ? { 'metrics.json': { epoch: epoch + 1, corrected: evaluation.corrected, primary: evaluation.primary } } : {} });
      await writeCheckpoint(lastDir, { model, state, adam });
      epochs.push(record);
      await writeFile(metricsFile, JSON.stringify(record) + '\n', { flag: 'a' });
      await writeCurvesPng(path.join(out, 'curves.png'), curvePanels(state.history));
      const v = record.val;
      log(
        `epoch ${record.epoch}/${config.epochs}: loss ${record.loss.toFixed(4)} (cd ${record.lossCd.toFixed(4)} a ${record.lossA.toFixed(4)} c ${record.lossC.toFixed(4)})` +
          (v ? ` val acc ${v.accuracy.toFixed(4)} F1 ${v.macroF1.toFixed(4)} (primary ${v.primaryAccuracy.toFixed(4)} / ${v.primaryMacroF1.toFixed(4)})` : '') +
          ` lr ${learningRate.toExponential(2)} τ ${record.trust.toFixed(2)} ${formatDuration(record.seconds)}${isBest ? ' *best' : ''}`,
      );
    }
  } finally {
    if (saved) tf.dispose([...saved.moments.values()]);
    adam.dispose();
    model.dispose();
  }
  return { state, stopped, epochs };
}
