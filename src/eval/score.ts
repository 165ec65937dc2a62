/**
 * Scoring prediction rows against ABAW annotations with the shared metrics (model/metrics.ts).
 * Model classes are matched to the eight ABAW classes by name, so a 7-class model (no Other) or
 * one with its own class order is scored on the ABAW scale.
 */
import { ABAW_CLASSES, classIndexer } from '../model/data/classes.js';
import { classificationReport, type ClassificationReport } from '../model/metrics.js';
import type { Annotation } from './annotations.js';
import type { PredictionRow } from './predictions.js';

export interface VideoScore {
  video: string;
  frames: number;
  accuracy: number;
  /** ABAW's metric over the video's frames: mean F1 over all eight classes. */
  macroF1: number;
}

export interface Scores {
  overall: ClassificationReport;
  videos: VideoScore[];
}

/** ABAW index of each model class; refuses a class ABAW does not have. */
export function abawIndexOf(modelClasses: readonly string[]): number[] {
  const indexOf = classIndexer(ABAW_CLASSES);
  return modelClasses.map((c) => {
    const i = indexOf(c);
    if (i < 0) throw new Error(`model class "${c}" is not one of the ABAW classes (${ABAW_CLASSES.join(', ')})`);
    return i;
  });
}

/**
 * Metrics of `rows` (overall and per video) against the annotations. Every row must name an
 * annotated frame (label 0..7): a row for a frame labelled -1, beyond the file or of an unknown
 * video is an error, never silently dropped.
 */
export function scorePredictions(rows: readonly PredictionRow[], annotations: readonly Annotation[], modelClasses: readonly string[]): Scores {
  const toAbaw = abawIndexOf(modelClasses);
  const byName = new Map(annotations.map((a) => [a.name, a]));
  const truth: number[] = [];
  const predicted: number[] = [];
  const perVideo = new Map<string, { truth: number[]; predicted: number[] }>();
  const seen = new Set<string>();
  for (const row of rows) {
    const ann = byName.get(row.video);
    const t = ann?.labels[row.frame - 1];
    if (t === undefined || t < 0) throw new Error(`prediction for ${row.video} frame ${row.frame}: no annotated frame there`);
    const key = `${row.video}\n${row.frame}`;
    if (seen.has(key)) throw new Error(`prediction for ${row.video} frame ${row.frame} appears twice`);
    seen.add(key);
    const p = toAbaw[row.label];
    if (p === undefined) throw new Error(`prediction for ${row.video} frame ${row.frame}: label index ${row.label} is not a model class`);
    truth.push(t);
    predicted.push(p);
    let v = perVideo.get(row.video);
    if (!v) perVideo.set(row.video, (v = { truth: [], predicted: [] }));
    v.truth.push(t);
    v.predicted.push(p);
  }
  const videos = [...perVideo].map(([video, v]) => {
    const r = classificationReport(v.truth, v.predicted, ABAW_CLASSES);
    return { video, frames: r.count, accuracy: r.accuracy, macroF1: r.macroF1 };
  });
  return { overall: classificationReport(truth, predicted, ABAW_CLASSES), videos };
}
