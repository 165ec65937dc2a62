import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accuracy, classificationReport, confusionMatrix, macroF1, perClassScores } from '../../src/model/metrics.js';

const close = (a: number, b: number, msg?: string) => assert.ok(Math.abs(a - b) < 1e-9, `${msg ?? ''} ${a} != ${b}`);

// Worked by hand (and equal to scikit-learn's f1_score(..., average='macro') = 0.546031746):
//   truth      0 0 0 1 1 2 2 2 2
//   predicted  0 1 0 1 2 2 2 0 1
// class 0: tp 2, support 3, predicted 3 -> P 2/3, R 2/3, F1 2/3
// class 1: tp 1, support 2, predicted 3 -> P 1/3, R 1/2, F1 2/5
// class 2: tp 2, support 4, predicted 3 -> P 2/3, R 1/2, F1 4/7
// class 3: absent from both -> left out of the ABAW / scikit-learn macro average
const truth = [0, 0, 0, 1, 1, 2, 2, 2, 2];
const predicted = [0, 1, 0, 1, 2, 2, 2, 0, 1];

test('confusion matrix, rows = truth, columns = prediction', () => {
  assert.deepEqual(confusionMatrix(truth, predicted, 4), [
    [2, 1, 0, 0],
    [0, 1, 1, 0],
    [1, 1, 2, 0],
    [0, 0, 0, 0],
  ]);
  assert.throws(() => confusionMatrix([0, 1], [0], 2), /2 true labels but 1 predictions/);
  assert.throws(() => confusionMatrix([0, 2], [0, 1], 2), /true label 2 at 1 is not in 0..1/);
  assert.throws(() => confusionMatrix([0], [-1], 2), /prediction -1 at 0/);
});

test('accuracy and per-class precision / recall / F1 / support', () => {
  const cm = confusionMatrix(truth, predicted, 4);
  close(accuracy(cm), 5 / 9);
  const s = perClassScores(cm);
  const expected = [
    [2 / 3, 2 / 3, 2 / 3, 3],
    [1 / 3, 1 / 2, 2 / 5, 2],
    [2 / 3, 1 / 2, 4 / 7, 4],
    [0, 0, 0, 0],
  ];
  expected.forEach(([p, r, f, n], c) => {
    close(s[c]!.precision, p!, `precision ${c}`);
    close(s[c]!.recall, r!, `recall ${c}`);
    close(s[c]!.f1, f!, `f1 ${c}`);
    assert.equal(s[c]!.support, n);
  });
});

test('macro F1: over all classes (ABAW) or over the classes present (scikit-learn default)', () => {
  const cm = confusionMatrix(truth, predicted, 4);
  close(macroF1(cm), (2 / 3 + 2 / 5 + 4 / 7) / 4);
  close(macroF1(cm, { over: 'present' }), (2 / 3 + 2 / 5 + 4 / 7) / 3);
  // A class that is only predicted counts, with F1 = 0: f1_score([0, 0], [0, 3], average='macro') = 1/3.
  close(macroF1(confusionMatrix([0, 0], [0, 3], 4), { over: 'present' }), 1 / 3);
  // Over all four classes the two absent ones count 0 too: f1_score(..., labels=range(4)) = (2/3) / 4.
  close(macroF1(confusionMatrix([0, 0], [0, 3], 4)), 1 / 6);
  close(macroF1(confusionMatrix([], [], 3)), 0);
  close(accuracy(confusionMatrix([], [], 3)), 0);
});

test('classification report names the classes', () => {
  const r = classificationReport(truth, predicted, ['Neutral', 'Anger', 'Happiness', 'Other']);
  assert.equal(r.count, 9);
  close(r.accuracy, 5 / 9);
  close(r.macroF1, (2 / 3 + 2 / 5 + 4 / 7) / 4);
  close(r.macroF1Present, (2 / 3 + 2 / 5 + 4 / 7) / 3);
  assert.equal(r.perClass[1]!.class, 'Anger');
  assert.equal(r.perClass[1]!.predicted, 3);
});
