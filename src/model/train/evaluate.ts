/**
 * Evaluation of a model on a data set in inference mode (τ = 1, BatchNorm moving statistics, no
 * dropout, no augmentation): metrics of the corrected prediction (what the product reports) and
 * of the primary one (the plain classifier, for the CE baseline and ablations).
 */
import * as tf from '@tensorflow/tfjs';
import type { Arbex } from '../arbex.js';
import { createAugmenter, createBatchLoader, type DataRecord, type Dataset } from '../data/index.js';
import type { HeadOutput } from '../head/index.js';
import { INFER } from '../nn/layers.js';
import { classificationReport, type ClassificationReport } from '../metrics.js';
import type { FeatureCache } from './feature-cache.js';

export interface EvaluationOptions {
  batchSize: number;
  /** Stop after this many images (for quick checks); default: all. */
  limit: number;
  /** The data set's cached embeddings under this model's (frozen) extractor: only the head runs. */
  features?: FeatureCache;
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
  const { batchSize, limit, features } = { batchSize: 64, limit: Infinity, ...options };
  const t0 = performance.now();
  const truth: number[] = [];
  const corrected: number[] = [];
  const primary: number[] = [];
  let nll = 0;
  const records = take(dataset.records(), limit);
  for await (const b of features ? cachedBatches(model, features, records, batchSize) : imageBatches(model, dataset, records, batchSize)) {
    const [c, p, loss] = tf.tidy(() => {
      const out = b.forward();
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

/** A batch to score: its labels and its inference-mode forward pass (called inside tf.tidy). */
interface ScoredBatch {
  labels: Int32Array;
  forward: () => HeadOutput;
}

async function* imageBatches(model: Arbex, dataset: Pick<Dataset, 'load'>, records: AsyncIterable<DataRecord>, batchSize: number): AsyncGenerator<ScoredBatch> {
  const size = model.config.extractor.inputSize;
  const loader = createBatchLoader(dataset, { augmenter: createAugmenter({ size }), batchSize, train: false, shuffle: false });
  for await (const b of loader.batches(records)) {
    yield { labels: b.labels, forward: () => model.forward(tf.tensor4d(b.images, [b.count, size, size, 3]), INFER, { trust: 1 }) };
  }
}

async function* cachedBatches(model: Arbex, features: FeatureCache, records: AsyncIterable<DataRecord>, batchSize: number): AsyncGenerator<ScoredBatch> {
  const score = (chunk: DataRecord[]): ScoredBatch => ({
    labels: Int32Array.from(chunk, (r) => r.label),
    forward: () => model.head.forward(tf.tensor2d(features.gather(chunk), [chunk.length, features.dim]), INFER, { trust: 1 }),
  });
  let chunk: DataRecord[] = [];
  for await (const r of records) {
    chunk.push(r);
    if (chunk.length === batchSize) {
      yield score(chunk);
      chunk = [];
    }
  }
  if (chunk.length > 0) yield score(chunk);
}

async function* take<T>(items: AsyncIterable<T>, n: number): AsyncGenerator<T> {
  if (n <= 0) return;
  let i = 0;
  for await (const item of items) {
    yield item;
    if (++i >= n) return;
  }
}
