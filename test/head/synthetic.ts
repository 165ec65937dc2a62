/**
 * Synthetic embeddings for the head's learning test: Gaussian class clusters with symmetric label
 * noise on the training split. Everything comes from one seeded generator.
 */
import { seededRandom } from '../../src/model/nn/params.js';

export interface SyntheticOptions {
  classes: number;
  dim: number;
  trainPerClass: number;
  testPerClass: number;
  /** Distance between any class mean and the origin; within-class std is 1 per dimension. */
  separation: number;
  /** Fraction of training labels replaced by a different class chosen uniformly. */
  noise: number;
  seed: number;
}

export interface SyntheticData {
  train: { x: Float32Array; y: number[]; clean: number[] };
  test: { x: Float32Array; y: number[] };
  /** Accuracy on the test set of the nearest true mean (the Bayes rule for equal spherical clusters). */
  oracleAccuracy: number;
}

export function makeClusters(options: SyntheticOptions): SyntheticData {
  const { classes: L, dim: D, trainPerClass, testPerClass, separation, noise, seed } = options;
  const rng = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-12))) * Math.cos(2 * Math.PI * rng());
  const means = Array.from({ length: L }, () => {
    const v = Array.from({ length: D }, gauss);
    const n = Math.hypot(...v);
    return v.map((x) => (x / n) * separation);
  });
  const sample = (perClass: number) => {
    const x = new Float32Array(perClass * L * D);
    const y: number[] = [];
    for (let i = 0; i < perClass * L; i++) {
      const c = i % L;
      y.push(c);
      for (let k = 0; k < D; k++) x[i * D + k] = means[c]![k]! + gauss();
    }
    return { x, y };
  };
  const train = sample(trainPerClass);
  const noisy = train.y.map((c) => (rng() < noise ? (c + 1 + Math.floor(rng() * (L - 1))) % L : c));
  const test = sample(testPerClass);
  let hits = 0;
  test.y.forEach((c, i) => {
    let best = 0;
    let bestD = Infinity;
    means.forEach((m, j) => {
      let d = 0;
      for (let k = 0; k < D; k++) d += (test.x[i * D + k]! - m[k]!) ** 2;
      if (d < bestD) [bestD, best] = [d, j];
    });
    if (best === c) hits++;
  });
  return { train: { x: train.x, y: noisy, clean: train.y }, test, oracleAccuracy: hits / test.y.length };
}
