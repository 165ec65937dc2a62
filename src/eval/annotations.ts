/**
 * Strict reading of ABAW expression annotation files for evaluation. The training reader
 * (model/data/abaw.ts) reports a bad line and skips it; evaluation must not, because a skipped
 * line would silently shift every later label against its frame. Both use the same line parser.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { ABAW_CLASSES } from '../model/data/classes.js';
import { abawHeaderProblem, parseAbawLabel } from '../model/data/abaw.js';
import { readLines } from '../model/data/lines.js';

/** A malformed annotation file; the message names the file and the 1-based line. */
export class AnnotationError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    problem: string,
  ) {
    super(`${file}:${line}: ${problem}`);
    this.name = 'AnnotationError';
  }
}

export interface Annotation {
  /** Annotation name: the file name without `.txt` (e.g. `10-60-1280x720_right`). */
  name: string;
  file: string;
  /** labels[i] is frame i (0-based; annotation line i + 2, image `<i+1:05d>.jpg`); -1 = not annotated. */
  labels: number[];
}

/** Which face of the video an annotation file describes. */
export type Side = 'left' | 'right' | 'single';

/** `<video>_left` / `<video>_right` name one of two people; anything else is a one-person video. */
export function splitAnnotationName(name: string): { video: string; side: Side } {
  const m = /^(.*)_(left|right)$/.exec(name);
  return m ? { video: m[1]!, side: m[2] as Side } : { video: name, side: 'single' };
}

/**
 * Reads one annotation file, refusing it on the first problem: a wrong header, a line that is
 * not an integer, a label outside -1..7, or an empty line followed by more labels (which would
 * shift frames). Empty lines at the end are allowed.
 */
export async function readAnnotation(file: string): Promise<Annotation> {
  const labels: number[] = [];
  let blank = 0;
  let lines = 0;
  for await (const [n, text] of readLines(file)) {
    lines = n;
    if (n === 1) {
      const bad = abawHeaderProblem(text);
      if (bad) throw new AnnotationError(file, 1, bad);
      continue;
    }
    if (text.trim() === '') {
      blank = blank || n;
      continue;
    }
    if (blank) throw new AnnotationError(file, blank, 'empty line inside the labels (line i must be frame i)');
    const parsed = parseAbawLabel(text);
    if ('problem' in parsed) throw new AnnotationError(file, n, parsed.problem);
    labels.push(parsed.value);
  }
  if (lines === 0) throw new AnnotationError(file, 1, `empty file: expected the header ${ABAW_CLASSES.join(',')}`);
  return { name: path.basename(file, '.txt'), file, labels };
}

/**
 * Refuses an annotation with more labels than the video has frames. Label k sits on line k + 2,
 * so the first label without a frame is named by its line.
 */
export function checkFrameCount(annotation: Annotation, frames: number): void {
  if (annotation.labels.length > frames) {
    throw new AnnotationError(annotation.file, frames + 2, `${annotation.labels.length} labels but the video has only ${frames} frames`);
  }
}

/** Every `*.txt` in `dir`, sorted by name, each read strictly. */
export async function readAnnotationDir(dir: string): Promise<Annotation[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.txt')).sort();
  if (files.length === 0) throw new Error(`${dir}: no annotation files (*.txt)`);
  const out: Annotation[] = [];
  for (const f of files) out.push(await readAnnotation(path.join(dir, f)));
  return out;
}
