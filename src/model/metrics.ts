/**
 * Classification metrics as pure functions over label indices: confusion matrix, accuracy,
 * per-class precision / recall / F1 / support, and macro F1.
 *
 * Macro F1 follows ABAW's reference evaluation, which calls scikit-learn's
 * `f1_score(y_true, y_pred, average='macro')` without a `labels` argument: the average runs over
 * the classes that occur in the truth OR in the predictions. A class absent from both is left
 * out of the average (it is not counted as F1 = 0); a class present in only one of them has
 * F1 = 0 (scikit-learn's zero_division default). `macroF1(..., { over: 'all' })` averages over
 * every class instead, as `f1_score(..., labels=range(L), average='macro')` would.
 */

/** cm[t][p] = number of samples of true class t predicted as p. */
export type ConfusionMatrix = number[][];

export function confusionMatrix(truth: ArrayLike<number>, predicted: ArrayLike<number>, numClasses: number): ConfusionMatrix {
  if (truth.length !== predicted.length) throw new Error(`metrics: ${truth.length} true labels but ${predicted.length} predictions`);
  const cm = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i]!;
    const p = predicted[i]!;
    for (const [what, v] of [['true label', t], ['prediction', p]] as const) {
      if (!Number.isInteger(v) || v < 0 || v >= numClasses) throw new Error(`metrics: ${what} ${v} at ${i} is not in 0..${numClasses - 1}`);
    }
    cm[t]![p]! += 1;
  }
  return cm;
}

export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  /** Number of true samples of the class. */
  support: number;
  /** Number of samples predicted as the class. */
  predicted: number;
}

/** Precision, recall and F1 per class; 0 wherever a ratio's denominator is 0. */
export function perClassScores(cm: ConfusionMatrix): ClassScores[] {
  return cm.map((row, c) => {
    const tp = row[c]!;
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = cm.reduce((a, r) => a + r[c]!, 0);
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    // 2tp / (2tp + fp + fn) is the harmonic mean of precision and recall, defined whenever the
    // class occurs at all; it is what scikit-learn computes.
    const denom = support + predicted;
    return { precision, recall, f1: denom > 0 ? (2 * tp) / denom : 0, support, predicted };
  });
}

export function accuracy(cm: ConfusionMatrix): number {
  let right = 0;
  let total = 0;
  cm.forEach((row, t) => row.forEach((n, p) => ((total += n), t === p && (right += n))));
  return total > 0 ? right / total : 0;
}

export interface MacroOptions {
  /** 'present': classes in truth or predictions (ABAW / scikit-learn default); 'all': every class. */
  over: 'present' | 'all';
}

export function macroF1(cm: ConfusionMatrix, options: Partial<MacroOptions> = {}): number {
  const { over } = { over: 'present' as const, ...options };
  const scores = perClassScores(cm).filter((s) => over === 'all' || s.support + s.predicted > 0);
  return scores.length > 0 ? scores.reduce((a, s) => a + s.f1, 0) / scores.length : 0;
}

export interface ClassificationReport {
  accuracy: number;
  macroF1: number;
  /** Macro F1 over every class, present or not. */
  macroF1All: number;
  perClass: (ClassScores & { class: string })[];
  confusion: ConfusionMatrix;
  count: number;
}

/**
 * Everything at once, with class names.
 *
 * @example
 * const r = classificationReport([0, 1, 1], [0, 1, 0], ['Neutral', 'Happiness']);
 * r.accuracy; // 2/3
 */
export function classificationReport(truth: ArrayLike<number>, predicted: ArrayLike<number>, classes: readonly string[]): ClassificationReport {
  const cm = confusionMatrix(truth, predicted, classes.length);
  return {
    accuracy: accuracy(cm),
    macroF1: macroF1(cm),
    macroF1All: macroF1(cm, { over: 'all' }),
    perClass: perClassScores(cm).map((s, c) => ({ class: classes[c]!, ...s })),
    confusion: cm,
    count: truth.length,
  };
}
