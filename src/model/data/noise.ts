/**
 * Symmetric label noise on any data set, for robustness experiments (ARBEx's reliability
 * balancing is meant to survive noisy labels). Exactly round(p % of n) labels change, each to one
 * of the other classes uniformly, at seeded positions: a test can check the rate exactly and two
 * runs with one seed corrupt the same records.
 */
import { createRng, randInt, shuffled } from './synth/rng.js';
import type { DataRecord, Dataset } from './types.js';

/**
 * A noisy copy of `labels` (class indices in 0..numClasses-1).
 * @example const noisy = symmetricNoise([0, 1, 2, 1], 50, 3, 7);   // two labels moved
 */
export function symmetricNoise(labels: readonly number[], percent: number, numClasses: number, seed: number, salt = ''): number[] {
  if (!(percent >= 0 && percent <= 100)) throw new Error(`noise percent must be within 0..100 (got ${percent})`);
  const out = labels.slice();
  if (percent === 0) return out;
  const rng = createRng('label-noise', seed, salt, 'symmetric');
  const k = Math.round((labels.length * percent) / 100);
  for (const i of shuffled(rng, labels.map((_, j) => j)).slice(0, k)) {
    // Uniform over the other L-1 classes: draw from L-1 slots and skip over the true class.
    const r = randInt(rng, numClasses - 1);
    out[i] = r >= labels[i]! ? r + 1 : r;
  }
  return out;
}

/**
 * The data set with `percent` % of its labels moved (records keep their order and images).
 * @example const noisy = withLabelNoise(train, { percent: 20, seed: 1 });
 */
export function withLabelNoise(dataset: Dataset, options: { percent: number; seed: number }): Dataset {
  const { percent, seed } = options;
  let labels: Promise<number[]> | undefined;
  const noisyLabels = () =>
    (labels ??= (async () => {
      const clean: number[] = [];
      for await (const r of dataset.records()) clean.push(r.label);
      return symmetricNoise(clean, percent, dataset.classes.length, seed);
    })());
  return {
    ...dataset,
    records: async function* (): AsyncGenerator<DataRecord> {
      const noisy = await noisyLabels();
      let i = 0;
      for await (const r of dataset.records()) yield { ...r, label: noisy[i++]! };
    },
    load: (record, size) => dataset.load(record, size),
  };
}
