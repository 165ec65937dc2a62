/**
 * Aff-Wild2 / ABAW expression annotations: `annotations/<video>.txt` with the header
 * `Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other` and one label per frame
 * (line i+1 is frame i, 1-based; -1 = not annotated), images `cropped_aligned/<video>/<i:05d>.jpg`.
 *
 * Assumption about two-person videos: ABAW ships one cropped_aligned folder per annotation name,
 * e.g. `annotations/10-60-1280x720_right.txt` pairs with `cropped_aligned/10-60-1280x720_right/`,
 * so the folder name is always the annotation file's name.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { ABAW_CLASSES, classIndexer } from './classes.js';
import { openScanned } from './dataset.js';
import { parseIntField, readLines } from './lines.js';
import type { Dataset } from './types.js';

export interface AbawOptions {
  root: string;
  /** Folder of `<video>.txt` files (e.g. `Annotations/EXPR_Recognition_Challenge/Train_Set`). */
  annotationsDir?: string;
  /** Folder of per-video image folders. */
  imagesDir?: string;
  /** Class list the 8 ABAW classes are mapped to by name; classes not in it are skipped. */
  classes?: readonly string[];
  /** Only these videos (annotation names without `.txt`). */
  videos?: readonly string[];
}

const DEFAULTS = { annotationsDir: 'annotations', imagesDir: 'cropped_aligned', classes: ABAW_CLASSES } as const;

const HEADER = ABAW_CLASSES.join(',').toLowerCase();

/** What is wrong with an annotation file's first line, or undefined when it is the ABAW header. */
export function abawHeaderProblem(text: string): string | undefined {
  if (text.replace(/\s+/g, '').toLowerCase() === HEADER) return undefined;
  return `bad header "${text}": expected ${ABAW_CLASSES.join(',')}`;
}

/**
 * One label line of an annotation file: a class index 0..7, or -1 (not annotated). Shared by the
 * training reader (which reports and skips) and `arbex eval` (which refuses the file).
 */
export function parseAbawLabel(text: string): { value: number } | { problem: string } {
  const value = parseIntField(text);
  if (value === undefined) return { problem: `label "${text}" is not an integer` };
  if (value < -1 || value >= ABAW_CLASSES.length) return { problem: `label ${value} out of range -1..${ABAW_CLASSES.length - 1}` };
  return { value };
}

/**
 * Opens an ABAW expression split. Frames labelled -1 are counted as unlabelled, frames without
 * an image as missing, and a video with no image folder at all is also reported as a problem.
 * The group of a frame is its video (annotation name).
 *
 * @example
 * const train = await openAbaw({ root: 'data/abaw', annotationsDir: 'EXPR/Train_Set' });
 */
export async function openAbaw(options: AbawOptions): Promise<Dataset> {
  const { root, annotationsDir, imagesDir, classes, videos } = { ...DEFAULTS, ...options };
  const annDir = path.resolve(root, annotationsDir);
  const imgDir = path.resolve(root, imagesDir);
  const indexOf = classIndexer(classes);
  const toClass = ABAW_CLASSES.map((name) => indexOf(name));
  const wanted = videos && new Set(videos);
  const names = (await readdir(annDir))
    .filter((f) => f.endsWith('.txt'))
    .map((f) => f.slice(0, -4))
    .filter((v) => !wanted || wanted.has(v))
    .sort();
  return openScanned(classes, async function* (report) {
    for (const video of names) {
      const file = path.join(annDir, `${video}.txt`);
      const problem = (line: number, message: string) => report.problems.push({ file, line, message });
      const folder = path.join(imgDir, video);
      // One listing per video answers every frame's "is there an image?" at once.
      const images = await readdir(folder).then(
        (list) => new Set(list),
        () => undefined,
      );
      for await (const [n, text] of readLines(file)) {
        if (n === 1) {
          const bad = abawHeaderProblem(text);
          if (bad) {
            problem(1, `${bad}; file skipped`);
            break;
          }
          if (!images) problem(0, `no image folder ${folder}; every frame counted as missing`);
          continue;
        }
        if (text.trim() === '') continue;
        const parsed = parseAbawLabel(text);
        if ('problem' in parsed) {
          problem(n, parsed.problem);
          continue;
        }
        const { value } = parsed;
        if (value === -1) {
          report.unlabelled++;
          continue;
        }
        const label = toClass[value];
        if (label < 0) {
          report.unmapped++;
          continue;
        }
        const frame = n - 1;
        const name = `${String(frame).padStart(5, '0')}.jpg`;
        if (!images?.has(name)) {
          report.missingImages++;
          continue;
        }
        yield { path: path.join(folder, name), label, group: video, frame };
      }
    }
  });
}
