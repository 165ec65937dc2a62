/**
 * The ARBEx training loop (ARBEX-SPEC §6–7): per epoch a refined, class-balanced draw of the
 * training set, augmentation, Adam with lr₀·γ^epoch, the trust ramp τ 0 → 1 over the run, the
 * three losses (or plain cross-entropy for the baseline), validation, and checkpoints:
 *
 *   <out>/train-config.json   the validated training config (model config resolved)
 *   <out>/last/               model directory + state.json, written after every epoch (and on stop)
 *   <out>/best/               model directory of the best validation macro F1 + metrics.json
 *   <out>/metrics.jsonl       one JSON line per epoch
 *   <out>/curves.png          training loss and validation curves
 *
 * Resume is optimizer-free: the weights and the position (epoch, step inside it, best so far) are
 * restored, Adam's moment estimates start again from zero.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createArbex, loadArbex, saveArbex, type Arbex } from '../arbex.js';
import { loadWeights } from '../weights/index.js';
import { createAugmenter, createBatchLoader, refineSampler, type DataRecord, type Dataset } from '../data/index.js';
import { classDistributionLoss, headLosses, inverseFrequencyWeights, learningRateAt, trustAt } from '../head/index.js';
import { INFER, type Ctx } from '../nn/layers.js';
import { createParams, trainableVars } from '../nn/params.js';
import type { TrainConfig } from './config.js';
import { writeCurvesPng, type Panel } from './curves.js';
import { evaluate, type Evaluation } from './evaluate.js';
import { createProgress, formatDuration, type Progress } from './progress.js';

export interface TrainState {
  /** Epochs fully done. */
  epoch: number;
  /** Steps done inside epoch `epoch` (non-zero only after a stop in the middle of an epoch). */
  stepInEpoch: number;
  /** Steps done over the whole run. */
  step: number;
  /** Best epoch by validation macro F1 (scores null when the run has no validation set). */
  best: { epoch: number; macroF1: number | null; accuracy: number | null } | null;
}

export interface EpochRecord {
  epoch: number;
  step: number;
  seconds: number;
  learningRate: number;
  trust: number;
  loss: number;
  lossCd: number;
  lossA: number;
  lossC: number;
  val: { accuracy: number; macroF1: number; primaryAccuracy: number; primaryMacroF1: number; primaryLoss: number } | null;
  best: boolean;
}

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

const TRAIN: Ctx = { training: true };
const STATE_FILE = 'state.json';

async function writeJson(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await rename(tmp, file);
}

export async function readTrainState(dir: string): Promise<TrainState> {
  const file = path.join(dir, STATE_FILE);
  let json: Partial<TrainState>;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read the training state (${(e as Error).message})`);
  }
  if (![json.epoch, json.stepInEpoch, json.step].every((n) => Number.isInteger(n) && n! >= 0)) {
    throw new Error(`${file}: epoch, stepInEpoch and step must be integers >= 0`);
  }
  return json as TrainState;
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

/** Loss of the CE baseline: the class loss on the primary distribution l alone. */
function ceLoss(model: Arbex, out: ReturnType<Arbex['forward']>, y: tf.Tensor1D): tf.Scalar {
  const { labelSmoothing, classWeights } = model.config.head.loss;
  return classDistributionLoss(out.primary, y, { labelSmoothing, classWeights, logEps: model.config.head.epsilon.log });
}

/**
 * Variables the step trains. variableGrads rejects a variable the loss does not reach, so the
 * parts the objective leaves out are excluded here, not merely given zero gradients.
 */
function stepVariables(model: Arbex, config: TrainConfig): tf.Variable[] {
  const names = new Map([...model.store.vars].map(([n, v]) => [v, n]));
  const skip = (name: string) =>
    (name === 'head.anchors' && (config.objective === 'ce' || model.config.head.anchorsPerClass === 0)) ||
    (config.objective === 'ce' && name.startsWith('head.attn.'));
  const vars = config.freeze === 'backbone' ? model.head.variables() : trainableVars(model.store);
  return vars.filter((v) => !skip(names.get(v)!));
}

/** One optimisation step; returns [total, cd, a, c] before the update. */
function trainStep(model: Arbex, config: TrainConfig, vars: tf.Variable[], optimizer: tf.Optimizer, images: Float32Array, labels: Int32Array, trust: number): number[] {
  const S = model.config.extractor.inputSize;
  const kept: tf.Tensor[] = [];
  try {
    return tf.tidy(() => {
      const x = tf.tensor4d(images, [labels.length, S, S, 3]);
      const y = tf.tensor1d(labels, 'int32');
      // Frozen backbone: the extractor runs as at inference and stays off the gradient tape.
      const e = config.freeze === 'backbone' ? model.embed(x, INFER) : undefined;
      const { value, grads } = tf.variableGrads(() => {
        const out = e ? model.head.forward(e, TRAIN, { trust }) : model.forward(x, TRAIN, { trust });
        if (config.objective === 'ce') {
          const loss = ceLoss(model, out, y);
          kept.push(tf.keep(loss.clone()), tf.keep(tf.scalar(0)), tf.keep(tf.scalar(0)));
          return loss;
        }
        const losses = headLosses(model.head.config, model.head.anchors, out, y, trust);
        // variableGrads disposes everything but the loss; keep the parts to report them.
        kept.push(tf.keep(losses.classDistribution), tf.keep(losses.anchor), tf.keep(losses.center));
        return losses.total;
      }, vars);
      optimizer.applyGradients(grads);
      return Array.from(tf.stack([value, ...kept]).dataSync());
    });
  } finally {
    tf.dispose(kept);
  }
}

/** Anchors start at the class means of embeddings of the first images (ARBEX-SPEC §6). */
async function initAnchors(model: Arbex, dataset: Dataset, records: DataRecord[], batchSize: number): Promise<void> {
  const S = model.config.extractor.inputSize;
  const loader = createBatchLoader(dataset, { augmenter: createAugmenter({ size: S }), batchSize, train: false, shuffle: false });
  const parts: tf.Tensor2D[] = [];
  const labels: number[] = [];
  try {
    for await (const b of loader.batches(records)) {
      parts.push(tf.tidy(() => model.embed(tf.tensor4d(b.images, [b.count, S, S, 3]), INFER)));
      labels.push(...b.labels);
    }
    const all = tf.concat(parts);
    model.head.initAnchorsFromMeans(all, labels);
    all.dispose();
  } finally {
    tf.dispose(parts);
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

/**
 * Trains (or resumes) a run into `out`.
 *
 * @example
 * const cfg = validateTrainConfig(JSON.parse(await readFile('configs/demo.json', 'utf8')));
 * const train = await openDataSpec(parseDataSpec('folder:data/synth/train,group=prefix'), cfg.model.classes);
 * await trainArbex({ config: cfg, train, out: 'runs/demo' });
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
  if (o.resume) {
    const saved = JSON.parse(await readFile(configFile, 'utf8').catch(() => 'null')) as TrainConfig | null;
    if (!saved) throw new Error(`${configFile}: missing; nothing to resume in ${out}`);
    if (JSON.stringify({ ...saved, epochs: 0 }) !== JSON.stringify({ ...config, epochs: 0 })) {
      throw new Error(`${out}: the training config differs from the one the run started with (only epochs may change on resume)`);
    }
    state = await readTrainState(lastDir);
    model = await loadArbex(lastDir);
    log(`resume: from epoch ${state.epoch + 1}${state.stepInEpoch ? ` step ${state.stepInEpoch + 1}` : ''} (global step ${state.step}); Adam restarts`);
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
    state = { epoch: 0, stepInEpoch: 0, step: 0, best: null };
    await writeJson(configFile, config);
  }
  // Lines past the checkpoint belong to work that is being redone.
  const history = (await readEpochRecords(metricsFile)).filter((r) => r.epoch <= state.epoch);
  await writeFile(metricsFile, history.map((r) => JSON.stringify(r) + '\n').join(''));

  const S = model.config.extractor.inputSize;
  const sampler = refineSampler(train, { perGroup: config.perGroup, perClass: config.perClass, seed: config.seed });
  const augmenter = createAugmenter(config.augment ? { size: S, ...config.augment } : { size: S, resize: S, flip: 0, rotate: 0, brightness: 0, contrast: 0, saturation: 0, noise: 0 });
  const loader = createBatchLoader(train, { augmenter, batchSize: config.batchSize, train: true, shuffle: false, dropLast: true, seed: config.seed, prefetch: 2 });
  const vars = stepVariables(model, config);
  const optimizer = tf.train.adam(config.learningRate);
  log(`model: ${model.extractor.paramCount} extractor + ${model.head.variables().reduce((n, v) => n + v.size, 0)} head parameters; training ${vars.reduce((n, v) => n + v.size, 0)} (objective ${config.objective}, freeze ${config.freeze})`);

  let stopped = false;
  const epochs: EpochRecord[] = [];
  const checkpoint = async (dir: string) => {
    await saveArbex(dir, model);
    await writeJson(path.join(dir, STATE_FILE), state);
  };
  try {
    for (let epoch = state.epoch; epoch < config.epochs && !stopped; epoch++) {
      const t0 = performance.now();
      const drawn = await sampler.epoch(epoch);
      if (drawn.emptyClasses.length > 0 && epoch === state.epoch) log(`warning: no training images of ${drawn.emptyClasses.map((c) => classes[c]).join(', ')}`);
      const stepsPerEpoch = Math.floor(drawn.records.length / config.batchSize);
      if (stepsPerEpoch < 1) throw new Error(`an epoch has ${drawn.records.length} images, fewer than batchSize ${config.batchSize}`);
      const totalSteps = stepsPerEpoch * config.epochs;
      if (state.step === 0 && config.anchorInit === 'means' && model.config.head.anchorsPerClass > 0 && config.objective === 'arbex') {
        await initAnchors(model, train, drawn.records.slice(0, Math.max(256, 8 * classes.length)), config.evalBatchSize);
      }
      const learningRate = learningRateAt(epoch, config);
      // AdamOptimizer reads this field on every update; a new optimizer per epoch would drop
      // Adam's moment estimates.
      (optimizer as unknown as { learningRate: number }).learningRate = learningRate;
      const sums = [0, 0, 0, 0];
      let n = 0;
      let trust = 0;
      const skip = state.stepInEpoch;
      for await (const b of loader.batches(drawn.records.slice(skip * config.batchSize, stepsPerEpoch * config.batchSize), epoch)) {
        trust = trustAt(state.step, totalSteps);
        const losses = trainStep(model, config, vars, optimizer, b.images, b.labels, trust);
        if (!losses.every(Number.isFinite)) throw new Error(`loss is not finite at step ${state.step + 1} (${losses.join(', ')})`);
        losses.forEach((v, i) => (sums[i] += v));
        n++;
        state.step++;
        state.stepInEpoch++;
        o.progress.update(state.stepInEpoch, stepsPerEpoch, `epoch ${epoch + 1}/${config.epochs} loss ${(sums[0]! / n).toFixed(4)} τ ${trust.toFixed(2)}`);
        o.onStep?.({ epoch, step: state.step, loss: losses[0]!, trust });
        if (o.signal?.aborted) {
          stopped = true;
          break;
        }
      }
      o.progress.end();
      if (stopped) {
        await checkpoint(lastDir);
        log(`stopped: saved ${lastDir} at epoch ${epoch + 1} step ${state.stepInEpoch}/${stepsPerEpoch}; continue with --resume`);
        break;
      }
      let evaluation: Evaluation | undefined;
      if (val) evaluation = await evaluate(model, val, { batchSize: config.evalBatchSize });
      const chosen = evaluation && (config.objective === 'ce' ? evaluation.primary : evaluation.corrected);
      const score = chosen ? chosen.macroF1 : -Infinity;
      const isBest = !state.best || state.best.macroF1 === null || score > state.best.macroF1;
      state.epoch = epoch + 1;
      state.stepInEpoch = 0;
      if (isBest) state.best = { epoch: epoch + 1, macroF1: chosen?.macroF1 ?? null, accuracy: chosen?.accuracy ?? null };
      const record: EpochRecord = {
        epoch: epoch + 1,
        step: state.step,
        seconds: Math.round((performance.now() - t0) / 100) / 10,
        learningRate,
        trust,
        loss: sums[0]! / Math.max(1, n),
        lossCd: sums[1]! / Math.max(1, n),
        lossA: sums[2]! / Math.max(1, n),
        lossC: sums[3]! / Math.max(1, n),
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
      await checkpoint(lastDir);
      if (isBest) {
        await checkpoint(bestDir);
        if (evaluation) await writeJson(path.join(bestDir, 'metrics.json'), { epoch: epoch + 1, corrected: evaluation.corrected, primary: evaluation.primary });
      }
      epochs.push(record);
      history.push(record);
      await writeFile(metricsFile, JSON.stringify(record) + '\n', { flag: 'a' });
      await writeCurvesPng(path.join(out, 'curves.png'), curvePanels(history));
      const v = record.val;
      log(
        `epoch ${record.epoch}/${config.epochs}: loss ${record.loss.toFixed(4)} (cd ${record.lossCd.toFixed(4)} a ${record.lossA.toFixed(4)} c ${record.lossC.toFixed(4)})` +
          (v ? ` val acc ${v.accuracy.toFixed(4)} F1 ${v.macroF1.toFixed(4)} (primary ${v.primaryAccuracy.toFixed(4)} / ${v.primaryMacroF1.toFixed(4)})` : '') +
          ` lr ${learningRate.toExponential(2)} τ ${trust.toFixed(2)} ${formatDuration(record.seconds)}${isBest ? ' *best' : ''}`,
      );
    }
  } finally {
    optimizer.dispose();
    model.dispose();
  }
  return { state, stopped, epochs };
}
