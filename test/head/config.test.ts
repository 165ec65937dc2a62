import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HEAD_DEFAULTS, featureDim, inverseFrequencyWeights, validateHeadConfig } from '../../src/model/head/config.js';

const base = { classes: ['a', 'b', 'c'], embedDim: 64 };

describe('validateHeadConfig', () => {
  test('fills every default and keeps the given values', () => {
    const c = validateHeadConfig(base);
    assert.deepEqual(c, { ...base, ...HEAD_DEFAULTS });
    assert.equal(featureDim(c), 64);
    const r = validateHeadConfig({ ...base, reduceDim: 32, anchorsPerClass: 0, attention: { tokens: 4 }, loss: { lambdaA: 0.5 } });
    assert.equal(featureDim(r), 32);
    assert.equal(r.anchorsPerClass, 0);
    assert.deepEqual(r.attention, { tokens: 4, heads: 4 });
    assert.deepEqual(r.loss, { ...HEAD_DEFAULTS.loss, lambdaA: 0.5 });
  });

  test('the result is a copy: editing it does not touch the input or the defaults', () => {
    const json = { ...base, hidden: [8, 4] };
    const c = validateHeadConfig(json);
    c.hidden.push(2);
    c.classes.push('d');
    assert.deepEqual(json.hidden, [8, 4]);
    assert.deepEqual(json.classes, ['a', 'b', 'c']);
    assert.deepEqual(validateHeadConfig(base).hidden, [384, 192, 96]);
  });

  const bad: [string, unknown, string][] = [
    ['not an object', [1, 2], 'head config: must be a JSON object (got [1,2])'],
    ['one class', { ...base, classes: ['a'] }, 'head config: classes must be a list of at least 2 non-empty strings (got ["a"])'],
    ['duplicate classes', { ...base, classes: ['a', 'b', 'a'] }, 'head config: classes must be unique ("a" repeats) (got ["a","b","a"])'],
    ['missing embedDim', { classes: ['a', 'b'] }, 'head config: embedDim must be an integer >= 1 (got undefined)'],
    ['negative K', { ...base, anchorsPerClass: -1 }, 'head config: anchorsPerClass must be an integer >= 0 (got -1)'],
    ['fractional K', { ...base, anchorsPerClass: 2.5 }, 'head config: anchorsPerClass must be an integer >= 0 (got 2.5)'],
    ['hidden entry', { ...base, hidden: [8, 0] }, 'head config: hidden[1] must be an integer >= 1 (got 0)'],
    ['dropout 1', { ...base, dropout: 1 }, 'head config: dropout must be a number in [0, 1) (got 1)'],
    ['zero temperature', { ...base, temperature: 0 }, 'head config: temperature must be a finite number > 0 (got 0)'],
    ['delta string', { ...base, delta: '1' }, 'head config: delta must be a finite number > 0 (got "1")'],
    ['tokens vs width', { ...base, reduceDim: 30, attention: { tokens: 8 } }, 'head config: attention.tokens must divide the feature width 30 (reduceDim) (got 8)'],
    ['heads vs token width', { ...base, attention: { tokens: 8, heads: 3 } }, 'head config: attention.heads must divide the token width 8 (got 3)'],
    ['class weights length', { ...base, loss: { classWeights: [1, 2] } }, 'head config: loss.classWeights must be a list of 3 numbers (one per class) (got [1,2])'],
    ['class weight zero', { ...base, loss: { classWeights: [1, 0, 1] } }, 'head config: loss.classWeights[1] must be a finite number > 0 (got 0)'],
    ['negative lambda', { ...base, loss: { lambdaC: -1 } }, 'head config: loss.lambdaC must be a finite number >= 0 (got -1)'],
    ['smoothing 1', { ...base, loss: { labelSmoothing: 1 } }, 'head config: loss.labelSmoothing must be a number in [0, 1) (got 1)'],
    ['zero margin', { ...base, loss: { anchorMargin: 0 } }, 'head config: loss.anchorMargin must be a finite number > 0 (got 0)'],
    ['epsilon', { ...base, epsilon: { log: -1 } }, 'head config: epsilon.log must be a finite number > 0 (got -1)'],
    ['typo at top level', { ...base, hiden: [8] }, 'head config: unknown key "hiden"'],
    ['typo in a section', { ...base, loss: { lambda_a: 1 } }, 'head config: unknown key "loss.lambda_a"'],
    ['section not an object', { ...base, attention: 8 }, 'head config: attention must be an object (got 8)'],
  ];
  for (const [name, json, message] of bad) {
    test(`rejects: ${name}`, () => {
      assert.throws(() => validateHeadConfig(json), { message });
    });
  }
});

describe('inverseFrequencyWeights', () => {
  test('weights ∝ 1/count with mean 1 over present classes; absent classes get 1; bad labels throw', () => {
    // Counts [1, 3, 0] → raw [1, 1/3] → mean 2/3 → [1.5, 0.5], and 1 for the absent class.
    const w = inverseFrequencyWeights([0, 1, 1, 1], 3);
    assert.ok(Math.abs(w[0]! - 1.5) < 1e-12 && Math.abs(w[1]! - 0.5) < 1e-12 && w[2] === 1, `${w}`);
    assert.throws(() => inverseFrequencyWeights([0, 3], 3), /label 3 at 1 is not in 0\.\.2/);
  });
});
