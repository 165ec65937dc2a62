/**
 * Evaluation of a model on a data set in inference mode (τ = 1, BatchNorm moving statistics, no
 * dropout, no augmentation): metrics of the corrected prediction (what the product reports) and
 * of the primary one (the plain classifier, for the CE baseline and ablations).
 */
import * as tf from '@tensorflow/tfjs';
import type { Arbex } from '../arbex.js';
import { createAugmenter, createBatchLoader, type Dataset } from '../data/index.js';
import { INFER } from '../nn/layers.js';
import { classificationReport, type ClassificationReport } from '../metrics.js';

export interface EvaluationOptions {
  batchSize: number;
  /** Stop after this many images (for quick checks); default: all. */
  limit: number;
}

export interface Evaluation {
  corrected: ClassificationReport;
  primary: ClassificationReport;
  /** Mean NLL of the primary distribution at the true label. */
  primaryLoss: number;
  seconds: number;
}

/**
 * @example
 * const { corrected } = await evaluate(model, await openDataSpec(parseDataSpec('folder:data/synth/test'), classes));
 * console.log(corrected.accuracy, corrected.macroF1);
 */
export async function evaluate(model: Arbex, dataset: Pick<Dataset, 'load' | 'records'>, options: Partial<EvaluationOptions> = {}): Promise<Evaluation> {
  const { batchSize, limit } = { batchSize: 64, limit: Infinity, ...options };
  const t0 = performance.now();
  const size = model.config.extractor.inputSize;
  const loader = createBatchLoader(dataset, { augmenter: createAugmenter({ size }), batchSize, train: false, shuffle: false });
  const truth: number[] = [];
  const corrected: number[] = [];
  const primary: number[] = [];
  let nll = 0;
  for await (const b of loader.batches(take(dataset.records(), limit))) {
    const [c, p, loss] = tf.tidy(() => {
      const out = model.forward(tf.tensor4d(b.images, [b.count, size, size, 3]), INFER, { trust: 1 });
      const y = tf.tensor1d(b.labels, 'int32');
      const picked = tf.sum(tf.mul(out.primary, tf.oneHot(y, out.primary.shape[1]!)), -1);
      return [out.corrected.argMax(-1), out.primary.argMax(-1), tf.sum(tf.neg(tf.log(tf.maximum(picked, 1e-12))))];
    });
    corrected.push(...(c.dataSync() as Int32Array));
    primary.push(...(p.dataSync() as Int32Array));
    nll += loss.dataSync()[0]!;
    tf.dispose([c, p, loss]);
    truth.push(...b.labels);
  }
  const classes = model.config.classes;
  return {
    corrected: classificationReport(truth, corrected, classes),
    primary: classificationReport(truth, primary, classes),
    primaryLoss: truth.length > 0 ? nll / truth.length : 0,
    seconds: (performance.now() - t0) / 1000,
  };
}

async function* take<T>(items: AsyncIterable<T>, n: number): AsyncGenerator<T> {
  if (n <= 0) return;
  let i = 0;
  for await (const item of items) {
    yield item;
    if (++i >= n) return;
  }
}
