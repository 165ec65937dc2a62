/**
 * Offline (whole-video) smoothing: the centred mean over ±D frames per track, after filling the
 * frames where that track's face was missed by linear interpolation (the ABAW practice).
 */
import { argmax, smoothCentred } from './smooth/index.js';
import type { FrameOutput } from './types.js';

/** Sets `smoothed` and `smoothedLabel` of every face from the centred mean of its track. */
export function smoothOffline(outputs: FrameOutput[], D: number, classes: readonly string[]): void {
  const byTrack = new Map<number, { frame: number; dist: number[] }[]>();
  for (const out of outputs) {
    for (const face of out.results) {
      let series = byTrack.get(face.track);
      if (!series) byTrack.set(face.track, (series = []));
      series.push({ frame: out.frame, dist: face.corrected });
    }
  }
  const smoothed = new Map<number, Map<number, number[]>>();
  for (const [track, series] of byTrack) {
    smoothed.set(track, new Map(smoothCentred(series, D).map((p) => [p.frame, p.dist])));
  }
  for (const out of outputs) {
    for (const face of out.results) {
      const dist = smoothed.get(face.track)!.get(out.frame)!;
      face.smoothed = dist;
      face.smoothedLabel = classes[argmax(dist)];
    }
  }
}
