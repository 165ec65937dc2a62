/**
 * Records -> batches of pixels for training or evaluation. Images are decoded (sharp, off the
 * main thread) and augmented for the next batch while the caller trains on the current one;
 * at most `prefetch` batches wait ahead, so memory stays bounded.
 */
import { seededRandom } from '../nn/params.js';
import type { Augmenter } from './augment.js';
import { shuffleInPlace } from './sampler.js';
import type { DataRecord, Dataset } from './types.js';

export interface Batch {
  /** count * size * size * 3 values in [0, 1], NHWC: tf.tensor4d(images, [count, size, size, 3]). */
  images: Float32Array;
  labels: Int32Array;
  records: DataRecord[];
  count: number;
  size: number;
}

export interface LoaderOptions {
  augmenter: Augmenter;
  batchSize?: number;
  /** Augment (training) or only resize (evaluation). */
  train?: boolean;
  /** Shuffle an array of records before batching (default: when training; streams keep their order). */
  shuffle?: boolean;
  /** Batches prepared ahead of the one being consumed. */
  prefetch?: number;
  /** Images decoded at once. */
  concurrency?: number;
  /** Drop a last batch smaller than batchSize. */
  dropLast?: boolean;
  /** Shuffle and augmentation of epoch e are drawn from seed and e, so runs repeat. */
  seed?: number;
}

export interface BatchLoader {
  /**
   * Batches of epoch `epoch`. `skip` records are passed over first (not loaded) with their
   * random draws made, so a run resumed inside an epoch sees exactly the batches it would have.
   */
  batches(records: readonly DataRecord[] | AsyncIterable<DataRecord>, epoch?: number, skip?: number): AsyncGenerator<Batch>;
}

const DEFAULTS = { batchSize: 32, train: true, prefetch: 1, concurrency: 4, dropLast: false, seed: 0 };

/**
 * The generator of epoch e's shuffle and per-image augmentation seeds: the shuffle first, then
 * one draw per record in order (the image's seed, for `augmenter.draw(seededRandom(seed))`).
 */
export function epochRandom(seed: number, epoch: number): () => number {
  return seededRandom(seed * 1_000_003 + epoch);
}

/**
 * Makes a batch loader over a data set. Training loads each image at the augmenter's resize
 * side and augments it; evaluation loads it at the model size, which is then a plain resize.
 *
 * @example
 * const loader = createBatchLoader(ds, { augmenter: createAugmenter({ size: 112 }), batchSize: 64 });
 * for await (const b of loader.batches((await sampler.epoch(e)).records, e)) {
 *   const x = tf.tensor4d(b.images, [b.count, b.size, b.size, 3]);
 * }
 */
export function createBatchLoader(dataset: Pick<Dataset, 'load'>, options: LoaderOptions): BatchLoader {
  const o = { ...DEFAULTS, shuffle: options.train ?? DEFAULTS.train, ...options };
  if (!(o.batchSize >= 1 && o.prefetch >= 0 && o.concurrency >= 1)) throw new Error('batchSize and concurrency must be >= 1, prefetch >= 0');
  const { augmenter } = o;
  const S = augmenter.size;

  async function build(chunk: DataRecord[], seeds: number[]): Promise<Batch> {
    const images = new Float32Array(chunk.length * S * S * 3);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < chunk.length; i = next++) {
        const r = chunk[i];
        const px = o.train
          ? augmenter.train(await dataset.load(r, augmenter.resize), seededRandom(seeds[i]))
          : augmenter.eval(await dataset.load(r, S));
        images.set(px, i * S * S * 3);
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.concurrency, chunk.length) }, worker));
    return { images, labels: Int32Array.from(chunk, (r) => r.label), records: chunk, count: chunk.length, size: S };
  }

  return {
    async *batches(records, epoch = 0, skip = 0) {
      const rng = epochRandom(o.seed, epoch);
      const source: Iterable<DataRecord> | AsyncIterable<DataRecord> = isStream(records)
        ? records
        : o.shuffle
          ? shuffleInPlace([...records], rng)
          : records;
      const pending: Promise<Batch>[] = [];
      const start = (chunk: DataRecord[]) => {
        // Per-image seeds are drawn in record order, so results do not depend on decode timing.
        const p = build(chunk, chunk.map(() => Math.floor(rng() * 2 ** 32)));
        // Marked handled now: a later batch may fail while an earlier one is awaited; the
        // error still surfaces when this batch's turn comes.
        p.catch(() => undefined);
        pending.push(p);
      };
      try {
        let chunk: DataRecord[] = [];
        let skipped = 0;
        for await (const r of source) {
          if (skipped < skip) {
            skipped++;
            rng();
            continue;
          }
          chunk.push(r);
          if (chunk.length < o.batchSize) continue;
          start(chunk);
          chunk = [];
          if (pending.length > o.prefetch) yield await pending.shift()!;
        }
        if (chunk.length > 0 && !o.dropLast) start(chunk);
        while (pending.length > 0) yield await pending.shift()!;
      } finally {
        // A consumer that stops early leaves no decode running behind it.
        await Promise.allSettled(pending);
      }
    },
  };
}

function isStream(records: readonly DataRecord[] | AsyncIterable<DataRecord>): records is AsyncIterable<DataRecord> {
  return Symbol.asyncIterator in records;
}
