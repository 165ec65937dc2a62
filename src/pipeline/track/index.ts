/**
 * Face tracking: stable ids for the faces of one stream. Each frame's faces are matched to the
 * existing tracks by an optimal (Hungarian) assignment on box overlap, with a fallback on centre
 * distance for small or fast faces and for faces coming back after a gap.
 *
 * - Birth hysteresis: a new track is `confirmed` after `minHits` consecutive matched frames; a
 *   tentative track that misses a frame is dropped. Its id is fixed at birth, so a confirmed
 *   track's earlier faces already carry the id it keeps.
 * - Death: a confirmed track survives up to `maxGap` frames without a match (a face that turns
 *   away, is occluded or leaves the frame briefly keeps its id when it returns near where it was).
 *
 * @example
 * const tracker = createTracker({ minHits: 3, maxGap: 25 });
 * const tracked = tracker.update(frame.index, faces); // faces plus { track, confirmed }
 * const shown = tracked.filter((f) => f.confirmed);
 */
import type { Box } from '../types.js';
import { boxIou } from '../detect/boxes.js';
import { assign } from './hungarian.js';

export interface TrackerOptions {
  /** IoU with a track's expected box at which a face continues that track. */
  minIou: number;
  /** Below minIou, a face may still continue a track if its centre is this close, in track sizes (sqrt of the area). */
  maxCenterDistance: number;
  /** ...and its size (sqrt of the area) differs from the track's by at most this factor. */
  maxSizeRatio: number;
  /** Consecutive matched frames before a track is confirmed. */
  minHits: number;
  /** Frames a confirmed track is kept without a match before it ends. */
  maxGap: number;
}

/** What the tracker needs of a face; anything else on the object is passed through. */
export interface Trackable {
  box: Box;
}

export type Tracked<T extends Trackable> = T & {
  /** Track id: unique within this tracker, stable while the track lives. */
  track: number;
  /** Whether the track has passed birth hysteresis. */
  confirmed: boolean;
};

interface Track {
  id: number;
  box: Box;
  /** Centre velocity in pixels per frame, smoothed. */
  vx: number;
  vy: number;
  lastFrame: number;
  hits: number;
  confirmed: boolean;
}

export interface Tracker {
  /** Assigns track ids to this frame's faces (same order as given). Frame indices must increase. */
  update<T extends Trackable>(frameIndex: number, faces: readonly T[]): Tracked<T>[];
  /** Forgets every track (a new stream or a seek); ids keep counting up. */
  reset(): void;
}

const VELOCITY_SMOOTHING = 0.5;
/** Extra cost per missed frame, so that among equally good matches the most recent track wins. */
const GAP_PENALTY = 0.01;

const size = (b: Box) => Math.sqrt(Math.max(1e-9, b.w * b.h));

/** Cost of continuing a track with a box seen from this reference box; Infinity when not plausible. */
function pairCost(ref: Box, box: Box, opts: TrackerOptions): number {
  const iou = boxIou(ref, box);
  if (iou >= opts.minIou) return 1 - iou;
  const s = size(ref);
  const ratio = size(box) / s;
  if (ratio > opts.maxSizeRatio || ratio < 1 / opts.maxSizeRatio) return Infinity;
  const d = Math.hypot(box.x + box.w / 2 - (ref.x + ref.w / 2), box.y + box.h / 2 - (ref.y + ref.h / 2)) / s;
  // Distance matches always rank behind overlap matches (cost >= 1).
  return d <= opts.maxCenterDistance ? 1 + d : Infinity;
}

export function createTracker(options: Partial<TrackerOptions> = {}): Tracker {
  const opts: TrackerOptions = { minIou: 0.3, maxCenterDistance: 1, maxSizeRatio: 1.5, minHits: 3, maxGap: 25, ...options };
  let tracks: Track[] = [];
  let nextId = 1;
  let lastFrame = -Infinity;

  function update<T extends Trackable>(frameIndex: number, faces: readonly T[]): Tracked<T>[] {
    if (!(frameIndex > lastFrame)) throw new Error(`tracker: frame index ${frameIndex} after ${lastFrame}; call reset() on a seek`);
    const previousFrame = lastFrame;
    lastFrame = frameIndex;
    tracks = tracks.filter((t) => frameIndex - t.lastFrame <= opts.maxGap + 1);
    // A track is compared with where it was last seen and where its velocity would put it now;
    // the better of the two counts (velocity separates crossing faces, the last position catches
    // faces that stop or come back after a gap).
    const cost = tracks.map((t) => {
      const dt = frameIndex - t.lastFrame;
      const predicted = { ...t.box, x: t.box.x + t.vx * dt, y: t.box.y + t.vy * dt };
      return faces.map((f) => Math.min(pairCost(t.box, f.box, opts), pairCost(predicted, f.box, opts)) + GAP_PENALTY * (dt - 1));
    });
    const match = assign(cost);
    const trackOf = new Array<Track | undefined>(faces.length);
    match.forEach((j, i) => {
      if (j < 0) return;
      const t = tracks[i];
      const f = faces[j].box;
      const dt = frameIndex - t.lastFrame;
      const vx = (f.x + f.w / 2 - (t.box.x + t.box.w / 2)) / dt;
      const vy = (f.y + f.h / 2 - (t.box.y + t.box.h / 2)) / dt;
      // After a gap the old velocity says little; start again from the observed one.
      const keep = t.lastFrame === previousFrame ? VELOCITY_SMOOTHING : 0;
      t.vx = keep * t.vx + (1 - keep) * vx;
      t.vy = keep * t.vy + (1 - keep) * vy;
      t.box = { ...f };
      // Tentative tracks exist only while matched in every update, so hits are consecutive.
      t.hits++;
      t.confirmed ||= t.hits >= opts.minHits;
      t.lastFrame = frameIndex;
      trackOf[j] = t;
    });
    // Tentative tracks die on their first miss; confirmed ones wait up to maxGap frames.
    tracks = tracks.filter((t) => t.lastFrame === frameIndex || t.confirmed);
    return faces.map((f, j) => {
      let t = trackOf[j];
      if (!t) {
        t = { id: nextId++, box: { ...f.box }, vx: 0, vy: 0, lastFrame: frameIndex, hits: 1, confirmed: opts.minHits <= 1 };
        tracks.push(t);
      }
      return { ...f, track: t.id, confirmed: t.confirmed };
    });
  }

  return {
    update,
    reset() {
      tracks = [];
      lastFrame = -Infinity;
    },
  };
}
