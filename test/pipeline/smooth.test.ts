import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argmax, createCausalSmoother, LIVE_SMOOTHING, LiveSmoothing, smoothCentred, SmoothingSpec, smoothingWindow, type SeriesPoint } from '../../src/pipeline/smooth/index.js';

function close(actual: number[], expected: number[], tol = 1e-12): void {
  assert.equal(actual.length, expected.length, `length ${actual.length} vs ${expected.length}`);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]!) <= tol, `[${i}] ${a} vs ${expected[i]} in ${JSON.stringify(actual)}`));
}

test('EMA over consecutive frames and across a gap (state decays per source frame)', () => {
  const s = createCausalSmoother({ kind: 'ema', alpha: 0.5 });
  close(s.push(7, 0, [1, 0, 0]), [1, 0, 0]);
  // 0.5·[1,0,0] + 0.5·[0,1,0]
  close(s.push(7, 1, [0, 1, 0]), [0.5, 0.5, 0]);
  // 0.5·[.5,.5,0] + 0.5·[0,0,1]
  close(s.push(7, 2, [0, 0, 1]), [0.25, 0.25, 0.5]);
  // Frame 3 missed: Δ = 2, old weight 0.5² = 0.25 → 0.25·[.25,.25,.5] + 0.75·[0,1,0]
  const out = s.push(7, 4, [0, 1, 0]);
  close(out, [0.0625, 0.8125, 0.125]);
  assert.equal(argmax(out), 1);
});

test('EMA with alpha 0.2: label changes only once the evidence accumulates', () => {
  const s = createCausalSmoother({ kind: 'ema', alpha: 0.2 });
  close(s.push(1, 10, [0.6, 0.4]), [0.6, 0.4]);
  // 0.8·0.6 + 0.2·0.2 = 0.52, 0.8·0.4 + 0.2·0.8 = 0.48
  const a = s.push(1, 11, [0.2, 0.8]);
  close(a, [0.52, 0.48]);
  assert.equal(argmax(a), 0);
  // 0.8·0.52 + 0.2·0 = 0.416
  const b = s.push(1, 12, [0, 1]);
  close(b, [0.416, 0.584]);
  assert.equal(argmax(b), 1);
});

test('trailing mean with window 3 counts only frames within the last 3 frame indices', () => {
  const s = createCausalSmoother({ kind: 'trailing', window: 3 });
  close(s.push(2, 0, [1, 0, 0]), [1, 0, 0]);
  close(s.push(2, 1, [0, 1, 0]), [0.5, 0.5, 0]);
  close(s.push(2, 2, [0, 0, 1]), [1 / 3, 1 / 3, 1 / 3]);
  // frames 1, 2, 3
  close(s.push(2, 3, [0, 1, 0]), [0, 2 / 3, 1 / 3]);
  // window (2, 5]: frames 3 and 5 only (4 was missed)
  close(s.push(2, 5, [1, 0, 0]), [0.5, 0.5, 0]);
  // window (6, 9]: frame 9 alone
  close(s.push(2, 9, [0, 0, 1]), [0, 0, 1]);
});

test('tracks are independent', () => {
  const s = createCausalSmoother({ kind: 'trailing', window: 2 });
  s.push(1, 0, [1, 0]);
  s.push(2, 0, [0, 1]);
  close(s.push(1, 1, [0, 1]), [0.5, 0.5]);
  close(s.push(2, 1, [0, 1]), [0, 1]);
});

test("'none' passes raw outputs through and holds no state", () => {
  const s = createCausalSmoother({ kind: 'none' });
  const raw = [0.7, 0.2, 0.1];
  const out = s.push(1, 0, raw);
  assert.deepEqual(out, raw);
  assert.notEqual(out, raw);
  assert.deepEqual(s.push(1, 1, [0.1, 0.2, 0.7]), [0.1, 0.2, 0.7]);
  assert.equal(s.size, 0);
});

test('vanished tracks are forgotten after forgetAfter frames; within it the state is kept', () => {
  const s = createCausalSmoother({ kind: 'ema', alpha: 0.5, forgetAfter: 5 });
  s.push(1, 0, [1, 0]);
  for (let f = 0; f <= 5; f++) s.push(2, f, [0.5, 0.5]);
  assert.equal(s.size, 2, 'track 1 is 5 frames old: kept');
  s.push(2, 6, [0.5, 0.5]);
  assert.equal(s.size, 1, 'track 1 is 6 frames old: forgotten');
  // Track 1 comes back as new: no blending with its old [1, 0].
  close(s.push(1, 7, [0, 1]), [0, 1]);
  // Gap of exactly forgetAfter: state kept, old weight 0.5⁵ = 1/32.
  close(s.push(1, 12, [1, 0]), [31 / 32, 1 / 32]);
  // Gap of 6 with no push in between by anyone (nothing swept): still starts afresh.
  close(s.push(1, 18, [0, 1]), [0, 1]);
});

test('memory stays bounded as faces come and go', () => {
  const s = createCausalSmoother({ kind: 'trailing', window: 4, forgetAfter: 5 });
  for (let f = 0; f < 200; f++) {
    s.push(f, f, [0.25, 0.75]);
    assert.ok(s.size <= 6, `${s.size} tracks held at frame ${f}`);
  }
  s.forget(199);
  assert.equal(s.size, 5);
  s.clear();
  assert.equal(s.size, 0);
});

test('one set of defaults: the smoother, live streams and the API agree', () => {
  assert.deepEqual(createCausalSmoother().options, { kind: 'ema', alpha: 0.3, window: 10, forgetAfter: 30 });
  assert.deepEqual(LIVE_SMOOTHING, { kind: 'ema', alpha: 0.3 });
  assert.equal(smoothingWindow({ kind: 'centred' }), 25);
  assert.equal(smoothingWindow({ kind: 'trailing' }), 10);
  // The API takes what the smoother takes: a trailing window of 1..1000, a centred one of 0..1000.
  assert.equal(SmoothingSpec.safeParse({ kind: 'trailing', window: 0 }).success, false);
  assert.equal(SmoothingSpec.safeParse({ kind: 'centred', window: 0 }).success, true);
  assert.equal(SmoothingSpec.safeParse({ kind: 'centred', window: 1001 }).success, false);
  assert.equal(LiveSmoothing.safeParse({ kind: 'centred' }).success, false);
  assert.throws(() => createCausalSmoother({ kind: 'trailing', window: 1001 }));
});

test('invalid options and inputs give clear errors', () => {
  assert.throws(() => createCausalSmoother({ kind: 'median' as never }), /kind must be 'ema', 'trailing' or 'none'/);
  for (const alpha of [0, -0.1, 1.5, Number.NaN]) assert.throws(() => createCausalSmoother({ alpha }), /alpha must be in \(0, 1\]/);
  for (const window of [0, 2.5, -3, 1001]) assert.throws(() => createCausalSmoother({ kind: 'trailing', window }), /window must be an integer in \[1, 1000\]/);
  assert.throws(() => createCausalSmoother({ forgetAfter: -1 }), /forgetAfter must be an integer >= 0/);
  assert.doesNotThrow(() => createCausalSmoother({ alpha: undefined }));

  const s = createCausalSmoother({ kind: 'ema', alpha: 0.5 });
  assert.throws(() => s.push(1, 0, [0.5, 0.6]), /must sum to 1/);
  assert.throws(() => s.push(1, 0, [1.5, -0.5]), />= 0/);
  assert.throws(() => s.push(1, 0, []), /non-empty/);
  assert.throws(() => s.push(1, 0.5, [1, 0]), /frameIndex must be an integer/);
  s.push(1, 3, [1, 0]);
  assert.throws(() => s.push(1, 3, [1, 0]), /frame 3 does not follow frame 3/);
  assert.throws(() => s.push(1, 4, [1, 0, 0]), /3 classes, earlier frames had 2/);
});

// Frames 0..4: [1,0], null, (2 absent), [0,1], [.5,.5].
// Interpolated: f1 = 2/3·[1,0] + 1/3·[0,1] = [2/3, 1/3]; f2 = [1/3, 2/3].
const GAPPY: SeriesPoint[] = [
  { frame: 0, dist: [1, 0] },
  { frame: 1, dist: null },
  { frame: 3, dist: [0, 1] },
  { frame: 4, dist: [0.5, 0.5] },
];

test('centred mean D=0 is the linear interpolation of missing frames', () => {
  const out = smoothCentred(GAPPY, 0);
  assert.deepEqual(out.map((p) => p.frame), [0, 1, 2, 3, 4]);
  assert.deepEqual(out.map((p) => p.observed), [true, false, false, true, true]);
  const expected = [[1, 0], [2 / 3, 1 / 3], [1 / 3, 2 / 3], [0, 1], [0.5, 0.5]];
  out.forEach((p, t) => close(p.dist, expected[t]!));
});

test('centred mean D=1 over interpolated gaps; edges average the frames that exist', () => {
  const out = smoothCentred(GAPPY, 1);
  const expected = [
    [5 / 6, 1 / 6], // f0, f1
    [2 / 3, 1 / 3], // f0..f2: (1 + 2/3 + 1/3)/3, (0 + 1/3 + 2/3)/3
    [1 / 3, 2 / 3], // f1..f3: (2/3 + 1/3 + 0)/3, (1/3 + 2/3 + 1)/3
    [5 / 18, 13 / 18], // f2..f4: (1/3 + 0 + 1/2)/3, (2/3 + 1 + 1/2)/3
    [0.25, 0.75], // f3, f4
  ];
  out.forEach((p, t) => close(p.dist, expected[t]!));
  assert.deepEqual(out.map((p) => argmax(p.dist)), [0, 0, 1, 1, 1]);
});

test('centred mean D=2 over interpolated gaps', () => {
  const out = smoothCentred(GAPPY, 2);
  const expected = [
    [2 / 3, 1 / 3], // f0..f2
    [0.5, 0.5], // f0..f3: (1 + 2/3 + 1/3 + 0)/4
    [0.5, 0.5], // f0..f4: 2.5/5 each
    [0.375, 0.625], // f1..f4: (2/3 + 1/3 + 0 + 1/2)/4
    [5 / 18, 13 / 18], // f2..f4
  ];
  out.forEach((p, t) => close(p.dist, expected[t]!));
});

test('ends hold the nearest observed value; input order does not matter', () => {
  const series: SeriesPoint[] = [
    { frame: 14, dist: null },
    { frame: 12, dist: [0, 1] },
    { frame: 10, dist: null },
    { frame: 13, dist: [1, 0] },
  ];
  const raw = smoothCentred(series, 0);
  assert.deepEqual(raw.map((p) => p.frame), [10, 11, 12, 13, 14]);
  assert.deepEqual(raw.map((p) => p.dist), [[0, 1], [0, 1], [0, 1], [1, 0], [1, 0]]);
  const d1 = smoothCentred(series, 1);
  close(d1[0]!.dist, [0, 1]);
  close(d1[3]!.dist, [2 / 3, 1 / 3]); // f12..f14
  close(d1[4]!.dist, [1, 0]); // f13, f14
});

test('centred mean matches a direct computation on a long random series and sums to 1', () => {
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const L = 8;
  const series: SeriesPoint[] = [];
  for (let f = 3; f < 400; f += 1 + Math.floor(rand() * 3)) {
    if (rand() < 0.2) {
      series.push({ frame: f, dist: null });
      continue;
    }
    const v = Array.from({ length: L }, () => rand());
    const s = v.reduce((a, b) => a + b, 0);
    series.push({ frame: f, dist: v.map((x) => x / s) });
  }
  const D = 7;
  const out = smoothCentred(series, D);
  // Direct: fill each frame from its nearest observed neighbours, then average the window.
  const known = series.filter((p) => p.dist) as { frame: number; dist: number[] }[];
  const first = series[0]!.frame;
  const last = series[series.length - 1]!.frame;
  const fill = (f: number): number[] => {
    const b = [...known].reverse().find((p) => p.frame <= f);
    const a = known.find((p) => p.frame >= f);
    if (!b) return a!.dist;
    if (!a) return b.dist;
    if (a.frame === b.frame) return a.dist;
    const w = (f - b.frame) / (a.frame - b.frame);
    return b.dist.map((x, i) => (1 - w) * x + w * a.dist[i]!);
  };
  assert.equal(out.length, last - first + 1);
  for (const p of out) {
    const acc = new Array<number>(L).fill(0);
    let n = 0;
    for (let f = Math.max(first, p.frame - D); f <= Math.min(last, p.frame + D); f++, n++) fill(f).forEach((x, i) => (acc[i]! += x));
    close(p.dist, acc.map((x) => x / n), 1e-9);
    assert.ok(Math.abs(p.dist.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  }
});

test('centred smoothing: invalid input and an empty series', () => {
  assert.deepEqual(smoothCentred([{ frame: 0, dist: null }, { frame: 1, dist: null }], 2), []);
  assert.deepEqual(smoothCentred([], 2), []);
  for (const D of [-1, 1.5, Number.NaN]) assert.throws(() => smoothCentred(GAPPY, D), /D must be an integer >= 0/);
  assert.throws(() => smoothCentred([{ frame: 1, dist: [1, 0] }, { frame: 1, dist: null }], 1), /frame 1 appears twice/);
  assert.throws(() => smoothCentred([{ frame: 0, dist: [1, 0] }, { frame: 1, dist: [1, 0, 0] }], 1), /3 classes, earlier frames had 2/);
  assert.throws(() => smoothCentred([{ frame: 0, dist: [0.2, 0.2] }], 1), /must sum to 1/);
});

test('argmax picks the first of equal maxima', () => {
  assert.equal(argmax([0.1, 0.6, 0.3]), 1);
  assert.equal(argmax([0.4, 0.2, 0.4]), 0);
  assert.throws(() => argmax([]), /empty/);
});
