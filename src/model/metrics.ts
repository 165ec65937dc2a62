/**
 * Classification metrics as pure functions over label indices: confusion matrix, accuracy,
 * per-class precision / recall / F1 / support, and macro F1.
 *
 * Macro F1 is ABAW's expression metric: the mean of the F1 of every class, all of them (8 for
 * ABAW), a class absent from both truth and predictions counting as F1 = 0, as
 * `f1_score(y_true, y_pred, labels=range(L), average='macro', zero_division=0)` computes it.
 * `macroF1(..., { over: 'present' })` is scikit-learn's default instead (no `labels` argument):
 * the mean over the classes that occur in the truth or in the predictions only. On a whole data
 * set where every class occurs the two agree; on subsets and single videos they differ.
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
  /** 'all': every class (ABAW's metric); 'present': classes in truth or predictions (scikit-learn's default). */
  over: 'all' | 'present';
}

export function macroF1(cm: ConfusionMatrix, options: Partial<MacroOptions> = {}): number {
  const { over } = { over: 'all' as const, ...options };
  const scores = perClassScores(cm).filter((s) => over === 'all' || s.support + s.predicted > 0);
  return scores.length > 0 ? scores.reduce((a, s) => a + s.f1, 0) / scores.length : 0;
}

export interface ClassificationReport {
  accuracy: number;
  /** ABAW's metric: mean F1 over every class, a class absent from truth and predictions counting 0. */
  macroF1: number;
  /** scikit-learn's default macro F1: the mean over the classes in truth or predictions only. */
  macroF1Present: number;
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
    macroF1Present: macroF1(cm, { over: 'present' }),
    perClass: perClassScores(cm).map((s, c) => ({ class: classes[c]!, ...s })),
    confusion: cm,
    count: truth.length,
  };
}
