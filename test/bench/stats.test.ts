/** The benches' small figures: percentile, label changes, lag behind known changes. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { stepResponseFrames } from '../../bench/lag.js';
import { addedLag, changeLags, labelChanges, percentile, perMinute, summary } from '../../bench/stats.js';

describe('percentile', () => {
  test('nearest rank, whatever the order', () => {
    const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    assert.equal(percentile(xs, 0.5), 5);
    assert.equal(percentile(xs, 0.95), 10);
    assert.equal(percentile(xs, 0.9), 9);
    assert.equal(percentile(xs, 0), 1);
    assert.equal(percentile(xs, 1), 10);
    assert.deepEqual(xs, [5, 1, 4, 2, 3, 10, 9, 8, 7, 6], 'the input is not sorted in place');
  });
  test('one value, and none', () => {
    assert.equal(percentile([7], 0.95), 7);
    assert.ok(Number.isNaN(percentile([], 0.5)));
  });
});

describe('labelChanges', () => {
  test('counts changes between labelled frames; a frame without a face neither counts nor breaks the chain', () => {
    assert.equal(labelChanges(['a', 'a', 'b', 'b', 'a']), 2);
    assert.equal(labelChanges(['a', null, 'a', 'b']), 1);
    assert.equal(labelChanges(['a', null, null, 'b', null]), 1);
    assert.equal(labelChanges([null, null]), 0);
    assert.equal(labelChanges([]), 0);
  });
  test('per minute of video', () => {
    assert.equal(perMinute(10, 1500, 25), 10); // 1500 frames at 25 fps is one minute
    assert.equal(perMinute(66, 1500, 24), 63.36);
    assert.equal(perMinute(3, 0, 25), 0);
  });
});

describe('changeLags', () => {
  test('frames from each true change to the first frame that shows the new label, within its segment', () => {
    const truth = [0, 0, 1, 1, 1, 2, 2, 0];
    const pred = [0, 0, 0, 1, 1, 1, null, 0];
    assert.deepEqual(changeLags(truth, pred), [
      { frame: 2, from: 0, to: 1, length: 3, lag: 1, shown: 2 },
      { frame: 5, from: 1, to: 2, length: 2, lag: null, shown: 0 }, // never says 2 while 2 lasts (a later 2 would not count)
      { frame: 7, from: 2, to: 0, length: 1, lag: 0, shown: 1 },
    ]);
  });
  test('no change, no entry; lengths must match', () => {
    assert.deepEqual(changeLags([3, 3, 3], [1, 2, 3]), []);
    assert.throws(() => changeLags([0, 1], [0]), /2 frames/);
  });
  test('added lag: late minus early where both caught the change', () => {
    const truth = [0, 0, 1, 1, 1, 1, 2, 2, 2, 0, 0];
    const raw = [0, 0, 1, 1, 1, 1, 0, 2, 2, 0, 0];
    const smooth = [0, 0, 0, 0, 1, 1, 0, 0, 0, 2, 0];
    const early = changeLags(truth, raw);
    const late = changeLags(truth, smooth);
    assert.deepEqual(early.map((c) => c.lag), [0, 1, 0]);
    assert.deepEqual(late.map((c) => c.lag), [2, null, 1]);
    assert.deepEqual(addedLag(early, late), [2, 1]);
    assert.throws(() => addedLag(early, late.slice(1)), /same truth/);
  });
});

test('summary rounds, and says null for no values', () => {
  assert.deepEqual(summary([40, 80, 120], 0), { n: 3, mean: 80, p50: 80, p90: 120, max: 120 });
  assert.deepEqual(summary([]), { n: 0, mean: null, p50: null, p90: null, max: null });
});

test("the live EMA's step response: alpha 0.3 follows a clean switch one frame after it", () => {
  // 0.7 of the old class after the first new frame, 0.49 after the second.
  assert.equal(stepResponseFrames({ kind: 'ema', alpha: 0.3 }), 1);
  assert.equal(stepResponseFrames({ kind: 'ema', alpha: 0.6 }), 0);
  assert.equal(stepResponseFrames({ kind: 'none' }), 0);
  assert.equal(stepResponseFrames({ kind: 'trailing', window: 10 }), 5);
});
