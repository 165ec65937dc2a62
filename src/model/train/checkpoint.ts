/**
 * Training checkpoints: everything a run needs to continue exactly where it stopped, in another
 * process or session.
 *
 *   <dir>/config.json, model.json, weights.bin   the model (any model directory reader loads it)
 *   <dir>/optimizer/                              Adam's step t and moments m, v per trained variable,
 *                                                 in the same checked format (config.json holds t, β₁, β₂, ε)
 *   <dir>/state.json                              position, best so far, the epoch in progress, history
 *
 * Every random generator of a run is a pure function of the seed and the position (the sampler
 * and the augmentation of epoch e, the dropout masks of step s; the anchors are drawn once, at
 * step 0), so the position is their state. The learning rate and τ are functions of the position
 * too.
 *
 * A checkpoint is written whole into `<dir>.partial/`, then swapped in by two renames (the old one
 * to `<dir>.previous/`, the new one to `<dir>/`). A crash at any moment leaves either the new
 * checkpoint or the previous one; readCheckpoint puts a stranded `<dir>.previous/` back.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadArbex, saveArbex, type Arbex } from '../arbex.js';
import { createParams } from '../nn/params.js';
import { readModelConfig, readWeights, saveModel } from '../weights/index.js';
import type { Adam } from './adam.js';

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

export interface TrainState {
  /** Epochs fully done. */
  epoch: number;
  /** Steps done inside epoch `epoch` (non-zero only after a stop in the middle of an epoch). */
  stepInEpoch: number;
  /** Steps done over the whole run. */
  step: number;
  /** Best epoch by validation macro F1 (scores null when the run has no validation set). */
  best: { epoch: number; macroF1: number | null; accuracy: number | null } | null;
  /**
   * The epoch in progress (zeros at an epoch boundary): sums of the loss parts [total, cd, a, c]
   * over its `stepInEpoch` steps, seconds spent on it, and the last step's τ.
   */
  running: { loss: number[]; seconds: number; trust: number };
  /** One record per finished epoch; metrics.jsonl holds the same, one line each. */
  history: EpochRecord[];
}

/** A checkpoint read back; the caller disposes `model` and the optimizer's tensors. */
export interface Checkpoint {
  state: TrainState;
  model: Arbex;
  /** null for a checkpoint written before checkpoints held the optimizer state. */
  optimizer: { step: number; moments: Map<string, tf.Tensor> } | null;
}

export interface CheckpointContents {
  model: Arbex;
  state: TrainState;
  /** Saved for `last/`; `best/` is a model to use, not to continue. */
  adam?: Adam;
  /** Extra JSON files written into the same directory (e.g. metrics.json), by file name. */
  json?: Record<string, unknown>;
}

const STATE_FILE = 'state.json';
const OPTIMIZER_DIR = 'optimizer';
const STATE_VERSION = 2;

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** A crash between the two renames leaves only `<dir>.previous/`: the last complete checkpoint. */
async function recover(dir: string): Promise<void> {
  const previous = `${dir}.previous`;
  if (!(await exists(dir)) && (await exists(previous))) await rename(previous, dir);
}

/**
 * Writes a checkpoint directory atomically (see the module comment).
 *
 * @example
 * await writeCheckpoint('runs/x/last', { model, state, adam });
 * const { state, model: resumed, optimizer } = await readCheckpoint('runs/x/last');
 */
export async function writeCheckpoint(dir: string, contents: CheckpointContents): Promise<void> {
  const { model, state, adam, json = {} } = contents;
  const partial = `${dir}.partial`;
  const previous = `${dir}.previous`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  await saveArbex(partial, model);
  if (adam) {
    const store = createParams();
    for (const [name, v] of adam.moments()) store.vars.set(name, v);
    await saveModel(path.join(partial, OPTIMIZER_DIR), { config: { kind: 'adam', step: adam.step, ...adam.options }, store });
  }
  for (const [file, value] of Object.entries({ ...json, [STATE_FILE]: { version: STATE_VERSION, ...state } })) {
    await writeFile(path.join(partial, file), JSON.stringify(value, null, 2) + '\n');
  }
  await recover(dir);
  await rm(previous, { recursive: true, force: true });
  if (await exists(dir)) await rename(dir, previous);
  await rename(partial, dir);
  await rm(previous, { recursive: true, force: true });
}

/** Reads `<dir>/state.json`, checking its fields. */
export async function readTrainState(dir: string): Promise<TrainState> {
  await recover(dir);
  const file = path.join(dir, STATE_FILE);
  let json: Partial<TrainState> & { version?: number };
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read the training state (${(e as Error).message})`);
  }
  if (![json.epoch, json.stepInEpoch, json.step].every((n) => Number.isInteger(n) && n! >= 0)) {
    throw new Error(`${file}: epoch, stepInEpoch and step must be integers >= 0`);
  }
  const { version, ...state } = json;
  if (version === undefined) return { ...(state as TrainState), running: { loss: [0, 0, 0, 0], seconds: 0, trust: 0 }, history: [] };
  if (version !== STATE_VERSION) throw new Error(`${file}: state version ${version} is not ${STATE_VERSION}`);
  const { running, history } = state;
  if (!running || !Array.isArray(running.loss) || running.loss.length !== 4 || !Array.isArray(history) || history.length !== state.epoch) {
    throw new Error(`${file}: running (4 loss sums) and history (one record per finished epoch) are malformed`);
  }
  return state as TrainState;
}

/** Reads a checkpoint written by writeCheckpoint (the model is loaded and checked). */
export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const state = await readTrainState(dir);
  const optimizerDir = path.join(dir, OPTIMIZER_DIR);
  let optimizer: Checkpoint['optimizer'] = null;
  if (await exists(optimizerDir)) {
    const config = (await readModelConfig(optimizerDir)) as { kind?: string; step?: number };
    if (config.kind !== 'adam' || !Number.isInteger(config.step)) throw new Error(`${optimizerDir}: not an Adam state (config.json: ${JSON.stringify(config)})`);
    optimizer = { step: config.step!, moments: await readWeights(optimizerDir) };
  }
  try {
    return { state, model: await loadArbex(dir), optimizer };
  } catch (e) {
    tf.dispose([...(optimizer?.moments.values() ?? [])]);
    throw e;
  }
}
