/**
 * Temporal smoothing of per-face class distributions.
 *
 * Live: a causal smoother per stream (EMA or trailing-window mean, state kept per track).
 * Offline: a centred mean over ±D frames after filling frames with no face by linear
 * interpolation, the practice that gains frame-level F1 on Aff-Wild2 (ABAW).
 *
 * Every distribution in or out is a number[] of length L summing to 1; the label of a smoothed
 * distribution is its argmax. Defaults and limits: spec.ts.
 */
import { SMOOTHING } from './spec.js';

export { LIVE_SMOOTHING, LiveSmoothing, SMOOTHING, SmoothingSpec, smoothingWindow } from './spec.js';

export type SmoothKind = 'ema' | 'trailing' | 'none';

export interface CausalSmootherOptions {
  /** 'ema', 'trailing' or 'none' (raw outputs passed through). */
  kind?: SmoothKind;
  /** EMA weight of a new frame, in (0, 1]; 1 means no smoothing. Default SMOOTHING.alpha. */
  alpha?: number;
  /** Trailing window length in source frames (integer in [1, SMOOTHING.maxWindow]). Default SMOOTHING.trailingWindow. */
  window?: number;
  /**
   * A track not pushed for more than this many frames is forgotten (its state dropped), so
   * memory stays bounded as faces come and go. Integer >= 0.
   */
  forgetAfter?: number;
}

export interface CausalSmoother {
  readonly options: Required<CausalSmootherOptions>;
  /**
   * Adds the distribution of `track` at `frameIndex` and returns the smoothed distribution.
   * Frame indices must increase per track (one smoother per stream).
   */
  push(track: number, frameIndex: number, dist: readonly number[]): number[];
  /** Drops one track's state (e.g. when the tracker ends it). */
  forget(track: number): void;
  /** Drops every track's state (e.g. after a seek). */
  clear(): void;
  /** Number of tracks whose state is held. */
  readonly size: number;
}

const DEFAULTS: Required<CausalSmootherOptions> = { kind: 'ema', alpha: SMOOTHING.alpha, window: SMOOTHING.trailingWindow, forgetAfter: 30 };

/** Largest allowed |Σp − 1| for an input distribution (float32 softmax sums are far closer). */
const SUM_TOLERANCE = 1e-3;

interface TrackState {
  last: number;
  classes: number;
  /** EMA: the current smoothed distribution. */
  ema: number[];
  /** Trailing: the raw frames inside the window, oldest first. */
  recent: { frame: number; dist: number[] }[];
}

/**
 * Creates a causal smoother for one stream.
 *
 * Gaps in a track's frame indices (the face was missed for some frames) are handled by time,
 * not by sample count, so both kinds mean the same thing whatever the detection rate:
 * - EMA: after a gap of Δ frames the old state keeps weight (1 − alpha)^Δ and the new frame
 *   gets the rest, i.e. state decays per source frame; Δ = 1 is the plain EMA.
 * - trailing: the mean covers the raw frames of the track whose index lies in the last
 *   `window` frame indices (frameIndex − window, frameIndex], however many that is.
 * A track whose gap exceeds `forgetAfter` starts afresh, exactly as a new track does.
 *
 * @example
 * const smoother = createCausalSmoother({ kind: 'ema', alpha: 0.3 });
 * const smoothed = smoother.push(face.track, frame.index, face.corrected);
 * const smoothedLabel = classes[argmax(smoothed)];
 */
export function createCausalSmoother(options: CausalSmootherOptions = {}): CausalSmoother {
  const opts = { ...DEFAULTS, ...definedOnly(options) };
  validateCausalOptions(opts);
  const tracks = new Map<number, TrackState>();
  let latest = -Infinity;

  // Sweeping only when the newest frame index advances keeps pushes within a frame O(1).
  function sweep(frameIndex: number): void {
    if (frameIndex <= latest) return;
    latest = frameIndex;
    for (const [track, st] of tracks) if (frameIndex - st.last > opts.forgetAfter) tracks.delete(track);
  }

  function push(track: number, frameIndex: number, dist: readonly number[]): number[] {
    if (!Number.isInteger(frameIndex)) throw new TypeError(`frameIndex must be an integer (got ${frameIndex})`);
    checkDistribution(dist, `track ${track} frame ${frameIndex}`);
    if (opts.kind === 'none') return [...dist];
    sweep(frameIndex);
    let st = tracks.get(track);
    if (st && frameIndex <= st.last) {
      throw new RangeError(`track ${track}: frame ${frameIndex} does not follow frame ${st.last}; frame indices must increase (clear() after a seek)`);
    }
    if (st && frameIndex - st.last > opts.forgetAfter) st = undefined;
    if (st && dist.length !== st.classes) {
      throw new RangeError(`track ${track}: distribution has ${dist.length} classes, earlier frames had ${st.classes}`);
    }
    if (!st) {
      st = { last: frameIndex, classes: dist.length, ema: [], recent: [] };
      tracks.set(track, st);
    }
    const gap = frameIndex - st.last;
    st.last = frameIndex;
    if (opts.kind === 'ema') {
      if (st.ema.length === 0) st.ema = normalise([...dist]);
      else {
        const keep = (1 - opts.alpha) ** gap;
        st.ema = normalise(st.ema.map((s, i) => keep * s + (1 - keep) * dist[i]!));
      }
      return [...st.ema];
    }
    st.recent.push({ frame: frameIndex, dist: [...dist] });
    while (st.recent[0]!.frame <= frameIndex - opts.window) st.recent.shift();
    const sum = new Array<number>(dist.length).fill(0);
    for (const r of st.recent) for (let i = 0; i < sum.length; i++) sum[i]! += r.dist[i]!;
    return normalise(sum);
  }

  return {
    options: opts,
    push,
    forget: (track) => void tracks.delete(track),
    clear: () => {
      tracks.clear();
      latest = -Infinity;
    },
    get size() {
      return tracks.size;
    },
  };
}

export interface SeriesPoint {
  frame: number;
  /** The face's distribution at this frame, or null when no face was found. */
  dist: number[] | null;
}

export interface SmoothedPoint {
  frame: number;
  dist: number[];
  /** True when this frame had its own distribution; false when it was filled by interpolation. */
  observed: boolean;
}

/**
 * Offline centred smoothing of one face's series (ABAW practice).
 *
 * 1. Frames are ordered; the output covers every frame index from the first to the last point
 *    of `series`. Frames with `dist: null`, and indices absent between points, are filled by
 *    linear interpolation between the nearest observed frames on either side; before the
 *    first and after the last observed frame the nearest observed value is held.
 * 2. Each frame becomes the mean of the filled frames within ±D of it. At the edges the window
 *    is cut to the frames that exist, and the mean is over those (no padding), so edge frames
 *    are averaged over D+1..2D frames.
 * Outputs are renormalised to sum to 1. A series with no observed frame has nothing to fill
 * from and gives []. D = 0 gives the interpolated series unsmoothed.
 *
 * @example
 * const smoothed = smoothCentred(perFrame.map((f) => ({ frame: f.index, dist: f.corrected ?? null })), 30);
 */
export function smoothCentred(series: readonly SeriesPoint[], D: number): SmoothedPoint[] {
  if (!Number.isInteger(D) || D < 0) throw new RangeError(`D must be an integer >= 0 (got ${D})`);
  const points = [...series].sort((a, b) => a.frame - b.frame);
  let L = -1;
  for (let k = 0; k < points.length; k++) {
    const { frame, dist } = points[k]!;
    if (!Number.isInteger(frame)) throw new TypeError(`frame must be an integer (got ${frame})`);
    if (k > 0 && frame === points[k - 1]!.frame) throw new RangeError(`frame ${frame} appears twice in the series`);
    if (dist === null) continue;
    checkDistribution(dist, `frame ${frame}`);
    if (L === -1) L = dist.length;
    else if (dist.length !== L) throw new RangeError(`frame ${frame}: distribution has ${dist.length} classes, earlier frames had ${L}`);
  }
  const known = points.filter((p): p is { frame: number; dist: number[] } => p.dist !== null);
  if (known.length === 0) return [];

  const first = points[0]!.frame;
  const n = points[points.length - 1]!.frame - first + 1;
  const filled = new Float64Array(n * L);
  const observed = new Array<boolean>(n).fill(false);
  for (const p of known) observed[p.frame - first] = true;
  let next = 0; // index in `known` of the first observed frame at or after t
  for (let t = 0; t < n; t++) {
    const frame = first + t;
    while (next < known.length && known[next]!.frame < frame) next++;
    const after = known[next];
    const before = after?.frame === frame ? after : known[next - 1];
    const row = t * L;
    if (!before || !after || before === after) {
      const src = (before ?? after)!.dist;
      for (let i = 0; i < L; i++) filled[row + i] = src[i]!;
    } else {
      const w = (frame - before.frame) / (after.frame - before.frame);
      for (let i = 0; i < L; i++) filled[row + i] = (1 - w) * before.dist[i]! + w * after.dist[i]!;
    }
  }

  // Prefix sums over frames make each window mean O(L) whatever D is.
  const prefix = new Float64Array((n + 1) * L);
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < L; i++) prefix[(t + 1) * L + i] = prefix[t * L + i]! + filled[t * L + i]!;
  }
  const out: SmoothedPoint[] = [];
  for (let t = 0; t < n; t++) {
    const lo = Math.max(0, t - D);
    const hi = Math.min(n - 1, t + D);
    const mean = new Array<number>(L);
    for (let i = 0; i < L; i++) mean[i] = (prefix[(hi + 1) * L + i]! - prefix[lo * L + i]!) / (hi - lo + 1);
    out.push({ frame: first + t, dist: normalise(mean), observed: observed[t]! });
  }
  return out;
}

/** Index of the largest entry (the first one on ties): the label of a (smoothed) distribution. */
export function argmax(dist: readonly number[]): number {
  if (dist.length === 0) throw new RangeError('argmax of an empty distribution');
  let best = 0;
  for (let i = 1; i < dist.length; i++) if (dist[i]! > dist[best]!) best = i;
  return best;
}

function normalise(v: number[]): number[] {
  const s = v.reduce((a, b) => a + b, 0);
  return v.map((x) => x / s);
}

function checkDistribution(dist: readonly number[], where: string): void {
  if (!Array.isArray(dist) || dist.length === 0) throw new TypeError(`${where}: distribution must be a non-empty array`);
  let sum = 0;
  for (const p of dist) {
    if (typeof p !== 'number' || !Number.isFinite(p) || p < 0) throw new RangeError(`${where}: distribution entries must be finite and >= 0 (got ${p})`);
    sum += p;
  }
  if (Math.abs(sum - 1) > SUM_TOLERANCE) throw new RangeError(`${where}: distribution must sum to 1 (sums to ${sum})`);
}

function validateCausalOptions(o: Required<CausalSmootherOptions>): void {
  if (o.kind !== 'ema' && o.kind !== 'trailing' && o.kind !== 'none') {
    throw new RangeError(`smoothing kind must be 'ema', 'trailing' or 'none' (got ${JSON.stringify(o.kind)})`);
  }
  if (typeof o.alpha !== 'number' || !(o.alpha > 0 && o.alpha <= 1)) throw new RangeError(`alpha must be in (0, 1] (got ${o.alpha})`);
  if (!Number.isInteger(o.window) || o.window < 1 || o.window > SMOOTHING.maxWindow) throw new RangeError(`window must be an integer in [1, ${SMOOTHING.maxWindow}] (got ${o.window})`);
  if (!Number.isInteger(o.forgetAfter) || o.forgetAfter < 0) throw new RangeError(`forgetAfter must be an integer >= 0 (got ${o.forgetAfter})`);
}

/** Keeps `{ alpha: undefined }` from overriding a default when spread. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
