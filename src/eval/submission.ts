/**
 * ABAW expression test submissions, in the two formats the challenge has used:
 * - `files`: one `<annotation name>.txt` per video: the class header line, then one predicted
 *   label index (0..7) per frame, line i+1 ↔ frame i;
 * - `single`: one file with the header `image_location,Neutral,...,Other`, then
 *   `<annotation name>/<i:05d>.jpg,<label>` for every frame.
 * Every frame gets a label (a submission may not leave gaps), so predictions are interpolated over
 * missing frames; a video without a single face gets `fallback` everywhere, and says so.
 */
import { ABAW_CLASSES } from '../model/data/classes.js';
import type { FramePrediction } from './series.js';

export type SubmissionFormat = 'files' | 'single';

export interface SubmissionOptions {
  format: SubmissionFormat;
  /** ABAW index of each model class (see abawIndexOf). */
  toAbaw: readonly number[];
  /** ABAW label for frames with no prediction at all (default 0, Neutral). */
  fallback?: number;
}

export interface Submission {
  /** `files`: file name → content. `single`: one entry with the empty name, the caller's file. */
  files: Map<string, string>;
  /** Annotation names whose frames were all given the fallback label. */
  fallbackVideos: string[];
}

/**
 * Builds the submission text from per-frame predictions (interpolated over missing frames).
 *
 * @example
 * const { files } = buildSubmission(evaluation.predictions, { format: 'single', toAbaw: abawIndexOf(model.classes) });
 */
export function buildSubmission(predictions: ReadonlyMap<string, readonly (FramePrediction | undefined)[]>, options: SubmissionOptions): Submission {
  const { format, toAbaw, fallback } = { fallback: 0, ...options };
  const fallbackVideos: string[] = [];
  const labelsOf = (name: string, preds: readonly (FramePrediction | undefined)[]) => {
    if (preds.length > 0 && preds.every((p) => p === undefined)) fallbackVideos.push(name);
    return preds.map((p) => (p ? toAbaw[p.label]! : fallback));
  };
  const files = new Map<string, string>();
  if (format === 'files') {
    for (const [name, preds] of predictions) files.set(`${name}.txt`, `${ABAW_CLASSES.join(',')}\n${labelsOf(name, preds).join('\n')}\n`);
  } else {
    const lines = [`image_location,${ABAW_CLASSES.join(',')}`];
    for (const [name, preds] of predictions) labelsOf(name, preds).forEach((label, i) => lines.push(`${name}/${String(i + 1).padStart(5, '0')}.jpg,${label}`));
    files.set('', `${lines.join('\n')}\n`);
  }
  return { files, fallbackVideos };
}
