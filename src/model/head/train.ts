/**
 * Training the head alone (frozen-extractor mode, docs/MODEL-SPEC.md §7): Adam, an exponential
 * learning-rate decay per epoch, and the trust ramp τ from 0 to 1 over the run.
 */
import * as tf from '@tensorflow/tfjs';
import type { Ctx } from '../nn/layers.js';
import type { Head } from './head.js';
import { headLosses } from './losses.js';

export interface LossNumbers {
  total: number;
  classDistribution: number;
  anchor: number;
  center: number;
}

export interface TrainerOptions {
  /** Initial Adam learning rate. */
  learningRate: number;
  /** γ: the learning rate is multiplied by it once per epoch. */
  decay: number;
  /** Steps that make one epoch (when the decay is applied). */
  stepsPerEpoch: number;
  /** Steps of the whole run (over which τ rises from 0 to 1). */
  totalSteps: number;
}

export interface StepResult extends LossNumbers {
  /** τ used for this step. */
  trust: number;
  learningRate: number;
  /** Steps done so far, this one included. */
  step: number;
}

export interface HeadTrainer {
  readonly optimizer: tf.AdamOptimizer;
  /** One optimisation step on a batch; all tensors it makes are released before it returns. */
  step(embeddings: tf.Tensor2D, labels: tf.Tensor1D | ArrayLike<number>): StepResult;
  /** Releases the optimizer's moment variables (the head's own parameters stay). */
  dispose(): void;
}

export const TRAINER_DEFAULTS = { learningRate: 3e-4, decay: 0.995 };

const TRAIN: Ctx = { training: true };

/** lr(epoch) = lr₀ · γ^epoch. */
export function learningRateAt(epoch: number, options: { learningRate: number; decay: number }): number {
  return options.learningRate * options.decay ** epoch;
}

/** τ(step) rising linearly from 0 at the first step to 1 at the last (step counted from 0). */
export function trustAt(step: number, totalSteps: number): number {
  return totalSteps <= 1 ? 1 : Math.min(1, Math.max(0, step / (totalSteps - 1)));
}

/**
 * One step: forward in training mode with trust τ, L = λ_cd·L_cd + τ·(λ_a·L_a + λ_c·L_c), Adam
 * update of the head's trainable variables. Returns the loss values before the update.
 */
export function trainStep(
  head: Head,
  optimizer: tf.Optimizer,
  embeddings: tf.Tensor2D,
  labels: tf.Tensor1D | ArrayLike<number>,
  trust: number,
): LossNumbers {
  const kept: tf.Tensor[] = [];
  try {
    const [total, classDistribution, anchor, center] = tf.tidy(() => {
      const y = labels instanceof tf.Tensor ? labels : tf.tensor1d(Array.from(labels), 'int32');
      const { value, grads } = tf.variableGrads(() => {
        const out = head.forward(embeddings, TRAIN, { trust });
        const losses = headLosses(head.config, head.anchors, out, y, trust);
        // variableGrads disposes everything but the loss; keep the parts to report them.
        kept.push(tf.keep(losses.classDistribution), tf.keep(losses.anchor), tf.keep(losses.center));
        return losses.total;
      }, head.variables());
      optimizer.applyGradients(grads);
      return Array.from(tf.stack([value, ...kept]).dataSync());
    }) as number[];
    return { total: total!, classDistribution: classDistribution!, anchor: anchor!, center: center! };
  } finally {
    tf.dispose(kept);
  }
}

/**
 * Adam with the per-epoch decay and the trust ramp applied step by step.
 *
 * @example
 * const trainer = createHeadTrainer(head, { stepsPerEpoch: 33, totalSteps: 33 * 40 });
 * for (const [e, y] of batches) console.log(trainer.step(e, y).total);
 * trainer.dispose();
 */
export function createHeadTrainer(
  head: Head,
  options: Partial<TrainerOptions> & Pick<TrainerOptions, 'stepsPerEpoch' | 'totalSteps'>,
): HeadTrainer {
  const opts: TrainerOptions = { ...TRAINER_DEFAULTS, ...options };
  if (!(opts.stepsPerEpoch >= 1) || !(opts.totalSteps >= 1)) {
    throw new Error(`trainer: stepsPerEpoch and totalSteps must be >= 1 (got ${opts.stepsPerEpoch}, ${opts.totalSteps})`);
  }
  const optimizer = tf.train.adam(opts.learningRate);
  let done = 0;
  return {
    optimizer,
    step(embeddings, labels) {
      const learningRate = learningRateAt(Math.floor(done / opts.stepsPerEpoch), opts);
      // AdamOptimizer reads this field on every update; tfjs offers no setter, and a new
      // optimizer per epoch would throw away Adam's moment estimates.
      (optimizer as unknown as { learningRate: number }).learningRate = learningRate;
      const trust = trustAt(done, opts.totalSteps);
      const losses = trainStep(head, optimizer, embeddings, labels, trust);
      done += 1;
      return { ...losses, trust, learningRate, step: done };
    },
    dispose() {
      optimizer.dispose();
    },
  };
}
