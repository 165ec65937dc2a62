/**
 * ABAW expression evaluation: per annotation file, one face's per-frame distributions (from the
 * aligned crops, or from the full video pipeline), then smoothing and missing-frame handling
 * (series.ts), then the scored rows and the report. Both modes end in the same code.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { ABAW_CLASSES } from '../model/data/classes.js';
import type { ClassScores, ConfusionMatrix } from '../model/metrics.js';
import type { FaceModel } from '../model/types.js';
import type { Engine, SmoothingSpec } from '../pipeline/types.js';
import { checkFrameCount, splitAnnotationName, type Annotation } from './annotations.js';
import { VIDEO_EXTENSIONS } from './label.js';
import type { PredictionRow } from './predictions.js';
import { scorePredictions, type VideoScore } from './score.js';
import { predictSeries, type FramePrediction, type MissingPolicy } from './series.js';

/** One face's raw distribution per frame of an annotation (null: no face / no image there). */
export type RawSeries = (number[] | null)[];

export interface FrameCounts {
  /** Frames with a label 0..7. */
  annotated: number;
  /** Frames labelled -1 (not scored). */
  ignored: number;
  /** Annotated frames without an image (crops) or without the face (videos). */
  missing: number;
  /** Missing frames scored with an interpolated prediction (0 with --missing skip). */
  interpolated: number;
  /** Frames scored. */
  evaluated: number;
  /** Annotated frames left unscored because their video had no face at all (or were skipped). */
  unscored: number;
}

export interface EvalReport {
  mode: 'crops' | 'videos';
  classes: string[];
  modelClasses: string[];
  smoothing: SmoothingSpec;
  missing: MissingPolicy;
  frames: FrameCounts;
  /** ABAW's metric: mean F1 over all eight classes, a class absent from truth and predictions counting 0. */
  macroF1: number;
  /** scikit-learn's default macro F1: the mean over the classes in truth or predictions only. */
  macroF1Present: number;
  accuracy: number;
  perClass: (ClassScores & { class: string })[];
  /** confusion[true][predicted]. */
  confusion: ConfusionMatrix;
  videos: (VideoScore & { missing: number })[];
  /** Macro F1 per centred half-width, when a sweep was asked for. */
  sweep?: { window: number; macroF1: number; accuracy: number }[];
}

export interface ScoreOptions {
  mode: 'crops' | 'videos';
  modelClasses: readonly string[];
  smoothing: SmoothingSpec;
  missing: MissingPolicy;
  /** Centred half-widths to sweep (each a full re-scoring of the same raw series). */
  sweep?: number[];
}

export interface Evaluation {
  report: EvalReport;
  /** Exactly the rows the metrics were computed from (write them with predictionLine). */
  rows: PredictionRow[];
  /** Every frame's final prediction per annotation, -1 frames included (for submissions). */
  predictions: Map<string, (FramePrediction | undefined)[]>;
}

function rowsOf(annotations: readonly Annotation[], predictions: Map<string, (FramePrediction | undefined)[]>): PredictionRow[] {
  const rows: PredictionRow[] = [];
  for (const a of annotations) {
    const preds = predictions.get(a.name)!;
    a.labels.forEach((label, i) => {
      const p = preds[i];
      if (label >= 0 && p) rows.push({ video: a.name, frame: i + 1, label: p.label, dist: p.dist });
    });
  }
  return rows;
}

function predictAll(annotations: readonly Annotation[], raw: Map<string, RawSeries>, smoothing: SmoothingSpec, missing: MissingPolicy) {
  return new Map(annotations.map((a) => [a.name, predictSeries(raw.get(a.name)!, { smoothing, missing })]));
}

/**
 * Scores raw series against their annotations. The metrics come from `rows` alone, which is
 * what makes a written predictions file recompute to the report.
 */
export function scoreSeries(annotations: readonly Annotation[], raw: Map<string, RawSeries>, options: ScoreOptions): Evaluation {
  const { smoothing, missing, modelClasses } = options;
  const predictions = predictAll(annotations, raw, smoothing, missing);
  const rows = rowsOf(annotations, predictions);
  const scores = scorePredictions(rows, annotations, modelClasses);
  const frames: FrameCounts = { annotated: 0, ignored: 0, missing: 0, interpolated: 0, evaluated: rows.length, unscored: 0 };
  const missingPerVideo = new Map<string, number>();
  for (const a of annotations) {
    const series = raw.get(a.name)!;
    const preds = predictions.get(a.name)!;
    let miss = 0;
    a.labels.forEach((label, i) => {
      if (label < 0) return void frames.ignored++;
      frames.annotated++;
      if (series[i] === null) miss++;
      if (series[i] === null && preds[i]) frames.interpolated++;
    });
    frames.missing += miss;
    missingPerVideo.set(a.name, miss);
  }
  frames.unscored = frames.annotated - frames.evaluated;
  const { overall } = scores;
  const report: EvalReport = {
    mode: options.mode,
    classes: [...ABAW_CLASSES],
    modelClasses: [...modelClasses],
    smoothing,
    missing,
    frames,
    macroF1: overall.macroF1,
    macroF1Present: overall.macroF1Present,
    accuracy: overall.accuracy,
    perClass: overall.perClass,
    confusion: overall.confusion,
    videos: annotations.map((a) => {
      const v = scores.videos.find((s) => s.video === a.name) ?? { video: a.name, frames: 0, accuracy: 0, macroF1: 0 };
      return { ...v, missing: missingPerVideo.get(a.name)! };
    }),
  };
  if (options.sweep?.length) {
    report.sweep = options.sweep.map((window) => {
      const s = scorePredictions(rowsOf(annotations, predictAll(annotations, raw, { kind: 'centred', window }, missing)), annotations, modelClasses).overall;
      return { window, macroF1: s.macroF1, accuracy: s.accuracy };
    });
  }
  return { report, rows, predictions };
}

export interface CollectOptions {
  /** Crops per model call. */
  batchSize: number;
  signal?: AbortSignal;
  /** Frames done so far over all annotations, and the total. */
  onProgress?: (done: number, total: number) => void;
}

const imageName = (i: number) => `${String(i + 1).padStart(5, '0')}.jpg`;

/** Decodes an aligned crop to the model's input: RGB bytes, resized to size². */
async function loadCrop(file: string, size: number): Promise<Uint8Array> {
  const buf = await sharp(file).removeAlpha().resize(size, size, { fit: 'fill' }).raw().toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/**
 * Raw series from ABAW `cropped_aligned/<annotation>/<i:05d>.jpg` images. Every frame of the
 * annotation that has an image is predicted (-1 frames too: they give smoothing its context).
 */
export async function collectCrops(annotations: readonly Annotation[], cropsDir: string, model: FaceModel, options: CollectOptions): Promise<Map<string, RawSeries>> {
  const { batchSize, signal, onProgress } = options;
  const total = annotations.reduce((a, b) => a + b.labels.length, 0);
  let done = 0;
  const out = new Map<string, RawSeries>();
  for (const a of annotations) {
    const folder = path.join(cropsDir, a.name);
    const present = new Set(await readdir(folder).catch(() => [] as string[]));
    const series: RawSeries = new Array(a.labels.length).fill(null);
    const frames = a.labels.map((_, i) => i).filter((i) => present.has(imageName(i)));
    for (let k = 0; k < frames.length; k += batchSize) {
      signal?.throwIfAborted();
      const chunk = frames.slice(k, k + batchSize);
      const crops = await Promise.all(chunk.map((i) => loadCrop(path.join(folder, imageName(i)), model.inputSize)));
      const preds = await model.predict(crops);
      chunk.forEach((i, j) => (series[i] = preds[j]!.corrected));
      onProgress?.(done + chunk.length, total);
      done += chunk.length;
    }
    done += a.labels.length - frames.length;
    onProgress?.(done, total);
    out.set(a.name, series);
  }
  return out;
}


/** The video file of `video` in `dir` (any common extension), or an error naming what was looked for. */
export async function findVideo(dir: string, video: string, listing?: string[]): Promise<string> {
  const files = listing ?? (await readdir(dir));
  const hit = VIDEO_EXTENSIONS.map((ext) => `${video}${ext}`).find((f) => files.includes(f));
  if (!hit) throw new Error(`no video for annotation "${video}" in ${dir} (looked for ${video}{${VIDEO_EXTENSIONS.join(',')}})`);
  return path.join(dir, hit);
}

interface TrackSummary {
  track: number;
  frames: number;
  meanX: number;
}

/**
 * The track an annotation follows: for `_left` / `_right` the track with the smallest / largest
 * mean box centre x over the video; for a one-person video the track seen in the most frames.
 */
export function pickTrack(tracks: readonly TrackSummary[], side: 'left' | 'right' | 'single'): number | undefined {
  if (tracks.length === 0) return undefined;
  const by = (better: (a: TrackSummary, b: TrackSummary) => boolean) => tracks.reduce((best, t) => (better(t, best) ? t : best)).track;
  if (side === 'left') return by((a, b) => a.meanX < b.meanX);
  if (side === 'right') return by((a, b) => a.meanX > b.meanX);
  return by((a, b) => a.frames > b.frames);
}

/**
 * Raw series through the full pipeline: each video is labelled once (no smoothing: the series
 * code smooths, as for crops), frame i aligned with annotation line i. A frame where the chosen
 * track has no face is missing.
 */
export async function collectVideos(annotations: readonly Annotation[], videosDir: string, engine: Pick<Engine, 'labelVideo'>, options: Omit<CollectOptions, 'batchSize'>): Promise<Map<string, RawSeries>> {
  const { signal, onProgress } = options;
  const listing = await readdir(videosDir);
  const groups = new Map<string, Annotation[]>();
  for (const a of annotations) {
    const { video } = splitAnnotationName(a.name);
    groups.set(video, [...(groups.get(video) ?? []), a]);
  }
  const files = new Map<string, string>();
  for (const video of groups.keys()) files.set(video, await findVideo(videosDir, video, listing));
  // Annotation lengths stand in for frame counts, which are known only once a video is decoded.
  const total = [...groups.values()].reduce((sum, anns) => sum + Math.max(...anns.map((a) => a.labels.length)), 0);
  let base = 0;
  const out = new Map<string, RawSeries>();
  for (const [video, anns] of groups) {
    // Per frame, each track's corrected distribution; tracks summarised for the left/right choice.
    const frames: Map<number, number[]>[] = [];
    const stats = new Map<number, { frames: number; sumX: number }>();
    let last = base;
    for await (const output of engine.labelVideo(files.get(video)!, { smoothing: { kind: 'none' }, signal })) {
      const faces = new Map<number, number[]>();
      for (const f of output.results) {
        faces.set(f.track, f.corrected);
        const s = stats.get(f.track) ?? { frames: 0, sumX: 0 };
        s.frames++;
        s.sumX += f.box.x + f.box.w / 2;
        stats.set(f.track, s);
      }
      frames[output.frame] = faces;
      last = base + output.frame + 1;
      onProgress?.(Math.min(last, total), total);
    }
    base = last;
    const tracks = [...stats].map(([track, s]) => ({ track, frames: s.frames, meanX: s.sumX / s.frames }));
    for (const a of anns) {
      checkFrameCount(a, frames.length);
      const track = pickTrack(tracks, splitAnnotationName(a.name).side);
      out.set(
        a.name,
        a.labels.map((_, i) => (track === undefined ? null : (frames[i]?.get(track) ?? null))),
      );
    }
  }
  return out;
}
