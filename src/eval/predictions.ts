/**
 * The per-frame predictions file of an evaluation: `video,frame,label,p_<class>...`, one row per
 * scored frame (frame = the 1-based ABAW image number, i.e. annotation line frame + 1). The
 * reported metrics are computed from these rows and nothing else, so reading the file back and
 * scoring it against the annotations gives the report's numbers exactly.
 */
import { readLines, splitCsvLine } from '../model/data/lines.js';
import { csvField } from '../pipeline/labels-format.js';

export interface PredictionRow {
  /** Annotation name (video, or video_left / video_right). */
  video: string;
  /** 1-based frame number, as in ABAW image names. */
  frame: number;
  /** Index of the predicted class: the scored label. */
  label: number;
  dist: number[];
}

export function predictionsHeader(classes: readonly string[]): string {
  return ['video', 'frame', 'label', ...classes.map((c) => `p_${c}`)].map(csvField).join(',');
}

export function predictionLine(row: PredictionRow, classes: readonly string[]): string {
  const probs = row.dist.map((p) => String(Math.round(p * 1e6) / 1e6 + 0));
  return [csvField(row.video), String(row.frame), csvField(classes[row.label]!), ...probs].join(',');
}

/** Reads a predictions file back; labels are matched to `classes` by name. Errors name the line. */
export async function readPredictions(file: string, classes: readonly string[]): Promise<PredictionRow[]> {
  const rows: PredictionRow[] = [];
  const expected = predictionsHeader(classes);
  for await (const [n, text] of readLines(file)) {
    if (n === 1) {
      if (text !== expected) throw new Error(`${file}:1: header "${text}" is not "${expected}"`);
      continue;
    }
    if (text === '') continue;
    const cells = splitCsvLine(text);
    if (!cells || cells.length !== 3 + classes.length) throw new Error(`${file}:${n}: expected ${3 + classes.length} fields`);
    const [video, frame, label, ...probs] = cells as [string, string, string, ...string[]];
    const index = classes.indexOf(label);
    if (index < 0 || !/^\d+$/.test(frame)) throw new Error(`${file}:${n}: bad frame "${frame}" or label "${label}"`);
    rows.push({ video, frame: Number(frame), label: index, dist: probs.map(Number) });
  }
  return rows;
}
