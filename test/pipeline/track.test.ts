/** Tracking with synthetic boxes: crossing faces, gaps, birth hysteresis and death. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTracker } from '../../src/pipeline/track/index.js';
import { assign } from '../../src/pipeline/track/hungarian.js';
import type { Box } from '../../src/pipeline/types.js';

interface Face { box: Box; name: string }
const face = (name: string, x: number, y: number, s = 60): Face => ({ name, box: { x, y, w: s, h: s } });

/** Runs the tracker over frames of faces; returns, per face name, the ids it got in order. */
function idsByName(frames: Face[][], options = {}) {
  const tracker = createTracker(options);
  const ids = new Map<string, number[]>();
  frames.forEach((faces, i) => {
    for (const f of tracker.update(i, faces)) ids.set(f.name, [...(ids.get(f.name) ?? []), f.track]);
  });
  return ids;
}

describe('assign (Hungarian)', () => {
  test('finds the optimum where greedy picking does not', () => {
    // Greedy takes (0,0)=1 first and is left with (1,1)=10: total 11. The optimum is 2 + 3 = 5.
    assert.deepEqual(assign([[1, 2], [3, 10]]), [1, 0]);
  });

  test('handles rectangular matrices and forbidden pairs', () => {
    assert.deepEqual(assign([[5, 1, 9]]), [1]);
    assert.deepEqual(assign([[5], [1], [9]]), [-1, 0, -1]);
    assert.deepEqual(assign([[Infinity, 1], [Infinity, 2]]), [1, -1]);
    assert.deepEqual(assign([[Infinity, Infinity], [1, Infinity]]), [-1, 0]);
    assert.deepEqual(assign([]), []);
  });

  test('matches brute force on random matrices', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let trial = 0; trial < 50; trial++) {
      const n = 1 + Math.floor(rand() * 5);
      const m = n + Math.floor(rand() * 2);
      const cost = Array.from({ length: n }, () => Array.from({ length: m }, () => Math.round(rand() * 100)));
      const got = assign(cost).reduce((acc, j, i) => acc + cost[i][j], 0);
      let best = Infinity;
      const perm = (i: number, used: Set<number>, sum: number) => {
        if (i === n) { best = Math.min(best, sum); return; }
        for (let j = 0; j < m; j++) if (!used.has(j)) { used.add(j); perm(i + 1, used, sum + cost[i][j]); used.delete(j); }
      };
      perm(0, new Set(), 0);
      assert.equal(got, best);
    }
  });
});

describe('tracker', () => {
  test('two faces crossing keep their ids', () => {
    // A moves right, B moves left, slightly lower; their boxes overlap heavily mid-way.
    const frames = Array.from({ length: 30 }, (_, t) => {
      const faces = [face('A', 20 + 10 * t, 100), face('B', 310 - 10 * t, 110)];
      return t % 2 ? faces : faces.reverse(); // input order must not matter
    });
    const ids = idsByName(frames);
    assert.equal(new Set(ids.get('A')).size, 1);
    assert.equal(new Set(ids.get('B')).size, 1);
    assert.notEqual(ids.get('A')![0], ids.get('B')![0]);
  });

  test('a face missing for a few frames keeps its id; a far-away newcomer does not', () => {
    const frames: Face[][] = [];
    for (let t = 0; t < 10; t++) frames.push([face('A', 100 + t, 100)]);
    for (let t = 10; t < 16; t++) frames.push([]); // turned away / occluded
    for (let t = 16; t < 20; t++) frames.push([face('A', 112 + t - 16, 102)]);
    frames.push([face('A', 116, 102), face('C', 400, 300)]);
    const ids = idsByName(frames, { maxGap: 10 });
    assert.equal(new Set(ids.get('A')).size, 1);
    assert.notEqual(ids.get('C')![0], ids.get('A')![0]);
  });

  test('after more than maxGap frames the track is gone and the face gets a new id', () => {
    const frames: Face[][] = [];
    for (let t = 0; t < 5; t++) frames.push([face('A', 100, 100)]);
    for (let t = 5; t < 12; t++) frames.push([]);
    frames.push([face('B', 100, 100)]);
    const ids = idsByName(frames, { maxGap: 5 });
    assert.notEqual(ids.get('B')![0], ids.get('A')![0]);
  });

  test('birth hysteresis: confirmed after minHits, a one-frame blip never confirms', () => {
    const tracker = createTracker({ minHits: 3 });
    const confirmed: boolean[] = [];
    const tracks = new Set<number>();
    for (let t = 0; t < 5; t++) {
      const faces = [face('A', 100, 100)];
      if (t === 1) faces.push(face('blip', 300, 300));
      for (const f of tracker.update(t, faces)) {
        tracks.add(f.track);
        if (f.name === 'A') confirmed.push(f.confirmed);
        else assert.equal(f.confirmed, false);
      }
    }
    assert.deepEqual(confirmed, [false, false, true, true, true]);
    assert.equal(tracks.size, 2);
    // A tentative track that misses a frame dies, so a face reappearing there starts over.
    const ids = idsByName([[face('X', 0, 0)], [face('X', 0, 0)], [], [face('Y', 0, 0)]], { minHits: 3 });
    assert.notEqual(ids.get('Y')![0], ids.get('X')![0]);
  });

  test('a new face gets a new id next to an existing one, and frames may be skipped', () => {
    const tracker = createTracker({ minHits: 2 });
    const first = tracker.update(0, [face('A', 100, 100)]);
    const second = tracker.update(2, [face('A', 104, 100), face('N', 250, 100)]);
    const third = tracker.update(4, [face('A', 108, 100), face('N', 252, 100)]);
    assert.equal(second[0].track, first[0].track);
    assert.notEqual(second[1].track, first[0].track);
    assert.equal(third[1].track, second[1].track);
    assert.equal(third[1].confirmed, true);
  });

  test('passes other fields through and rejects frames out of order', () => {
    const tracker = createTracker();
    const [out] = tracker.update(3, [{ box: { x: 0, y: 0, w: 10, h: 10 }, score: 0.9 }]);
    assert.equal(out.score, 0.9);
    assert.throws(() => tracker.update(3, []));
    tracker.reset();
    assert.doesNotThrow(() => tracker.update(0, []));
  });
});
