/**
 * Small pure figures the benchmarks report: percentiles, label changes, and how late a label
 * follows a known change.
 */

/** Nearest-rank percentile (q in [0, 1]) of `xs`; NaN for an empty list. */
export function percentile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * Times the label differs from the one before, over the frames that have a label: a frame
 * without a face (null) neither counts nor breaks the comparison (the label after the gap is
 * compared with the last one before it).
 *
 * @example labelChanges(['Happy', null, 'Happy', 'Sad']) // 1
 */
export function labelChanges<T>(labels: readonly (T | null)[]): number {
  let last: T | null = null;
  let changes = 0;
  for (const l of labels) {
    if (l === null) continue;
    if (last !== null && l !== last) changes++;
    last = l;
  }
  return changes;
}

/** `count` over a clip of `frames` frames at `fps`, per minute of video. */
export const perMinute = (count: number, frames: number, fps: number): number => (frames > 0 ? (count * 60 * fps) / frames : 0);

/** One real change of the true label and when a label series caught up with it. */
export interface ChangeLag {
  /** First frame of the new true label. */
  frame: number;
  from: number;
  to: number;
  /** Frames the new true label lasts (until the next change or the end). */
  length: number;
  /** Frames from the change to the first frame where the series says `to`, within the segment; null if it never does. */
  lag: number | null;
  /** Frames of the segment where the series says `to`. */
  shown: number;
}

/**
 * For every change of `truth` (a label per frame), the frames until `predicted` first shows the
 * new label inside the new label's segment. A series that never shows it in the segment has
 * lag null (missed). Frames where `predicted` is null (no face) count as not showing it.
 *
 * @example changeLags([0, 0, 1, 1, 1], [0, 0, 0, 1, 1]) // [{ frame: 2, from: 0, to: 1, length: 3, lag: 1, shown: 2 }]
 */
export function changeLags(truth: readonly number[], predicted: readonly (number | null)[]): ChangeLag[] {
  if (truth.length !== predicted.length) throw new RangeError(`truth has ${truth.length} frames, predicted ${predicted.length}`);
  const out: ChangeLag[] = [];
  for (let f = 1; f < truth.length; f++) {
    if (truth[f] === truth[f - 1]) continue;
    let end = f;
    while (end < truth.length && truth[end] === truth[f]) end++;
    let hit: number | null = null;
    let shown = 0;
    for (let g = f; g < end; g++) {
      if (predicted[g] !== truth[f]) continue;
      hit ??= g - f;
      shown++;
    }
    out.push({ frame: f, from: truth[f - 1]!, to: truth[f]!, length: end - f, lag: hit, shown });
  }
  return out;
}

/**
 * How much later `late` catches each change than `early` does (e.g. smoothed labels against raw
 * ones, which isolates the smoother's delay from the model's): for the changes both catch, lag
 * of `late` minus lag of `early`, in frames.
 *
 * @example addedLag(changeLags(truth, raw), changeLags(truth, smoothed)) // e.g. [2, 1, 3]
 */
export function addedLag(early: readonly ChangeLag[], late: readonly ChangeLag[]): number[] {
  if (early.length !== late.length) throw new RangeError('both lists must come from the same truth');
  const out: number[] = [];
  early.forEach((e, i) => {
    const l = late[i]!;
    if (e.frame !== l.frame) throw new RangeError('both lists must come from the same truth');
    if (e.lag !== null && l.lag !== null) out.push(l.lag - e.lag);
  });
  return out;
}

/** Mean, median, 90th percentile and maximum of a list, rounded to `digits`; nulls for an empty one. */
export function summary(xs: readonly number[], digits = 1): { n: number; mean: number | null; p50: number | null; p90: number | null; max: number | null } {
  const r = (x: number) => Math.round(x * 10 ** digits) / 10 ** digits;
  if (xs.length === 0) return { n: 0, mean: null, p50: null, p90: null, max: null };
  return { n: xs.length, mean: r(xs.reduce((a, b) => a + b, 0) / xs.length), p50: r(percentile(xs, 0.5)), p90: r(percentile(xs, 0.9)), max: r(Math.max(...xs)) };
}
