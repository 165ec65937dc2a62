/**
 * Label noise for robustness experiments (ARBEX's reliability balancing is meant to survive it).
 * Exactly round(p% of n) labels change, at seeded positions, so a test can check the rate exactly
 * and two runs with one seed corrupt the same samples.
 */
import { CLASSES, classIndex, NUM_CLASSES, type ClassName } from './classes.js';
import { symmetricNoise } from '../noise.js';
import { createRng, shuffled } from './rng.js';

export type NoiseKind = 'none' | 'symmetric' | 'flip';

export interface LabelNoise {
  /** symmetric: a label moves to any other class uniformly; flip: class i moves to flipTo[i]. */
  kind: NoiseKind;
  /** Share of labels changed, 0..100 (for flip: of each class that has a target). */
  percent: number;
  /** Targets of the class-flip noise; defaults to FLIP_TO. */
  flipTo?: Partial<Record<ClassName, ClassName>>;
}

/** The pairs annotators confuse most in FER data sets (and the synthetic faces share features). */
export const FLIP_TO: Record<ClassName, ClassName> = {
  Neutral: 'Sadness',
  Anger: 'Disgust',
  Disgust: 'Anger',
  Fear: 'Surprise',
  Happiness: 'Other',
  Sadness: 'Neutral',
  Surprise: 'Fear',
  Other: 'Happiness',
};

export const NO_NOISE: LabelNoise = { kind: 'none', percent: 0 };

/**
 * Returns a noisy copy of `labels` (class indices); `salt` separates independent draws under one seed.
 * @example const noisy = applyLabelNoise(clean, { kind: 'symmetric', percent: 20 }, 7, 'train');
 */
export function applyLabelNoise(labels: readonly number[], noise: LabelNoise, seed: number, salt = ''): number[] {
  const out = labels.slice();
  if (noise.kind === 'none' || noise.percent <= 0) return out;
  if (noise.percent > 100) throw new Error(`noise percent must be within 0..100 (got ${noise.percent})`);
  if (noise.kind === 'symmetric') return symmetricNoise(labels, noise.percent, NUM_CLASSES, seed, salt);
  const rng = createRng('label-noise', seed, salt, noise.kind);
  const targets = { ...FLIP_TO, ...noise.flipTo };
  CLASSES.forEach((c, ci) => {
    const members = labels.flatMap((l, j) => (l === ci ? [j] : []));
    const k = Math.round((members.length * noise.percent) / 100);
    for (const i of shuffled(rng, members).slice(0, k)) out[i] = classIndex(targets[c]);
  });
  return out;
}
