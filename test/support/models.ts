/** Face models for testing the plumbing without a network: deterministic, depending on the crop alone. */
import type { FaceModel, FacePrediction } from '../../src/model/types.js';

/**
 * A transparent model: the distribution over three classes is the crop's mean colour (R, G, B,
 * each plus one), so it depends on the crop alone. `batches` records the size of every predict call.
 */
export function colourModel(classes: string[] = ['a', 'b', 'c'], inputSize = 32): FaceModel & { batches: number[] } {
  if (classes.length !== 3) throw new Error('colourModel has one class per colour channel (3)');
  const batches: number[] = [];
  return {
    classes,
    inputSize,
    batches,
    async predict(crops) {
      batches.push(crops.length);
      return crops.map((c): FacePrediction => {
        const sum = [0, 0, 0];
        for (let i = 0; i < c.length; i++) sum[i % 3]! += c[i]!;
        const total = sum[0]! + sum[1]! + sum[2]! + 3;
        const p = sum.map((s) => (s + 1) / total);
        const k = p.indexOf(Math.max(...p));
        return { primary: p, corrected: p, primaryConfidence: 0.5, confidence: 0.5, anchorSimilarity: p, labelIndex: k, label: classes[k]! };
      });
    },
    dispose() {},
  };
}
