/**
 * RAF-DB (basic emotions): `EmoLabel/list_patition_label.txt` (sic) with lines
 * `train_00001.jpg 5`, images `Image/aligned/train_00001_aligned.jpg`.
 */
import path from 'node:path';
import { BASIC7_CLASSES, classIndexer, RAF_LABELS } from './classes.js';
import { fileChecker, openScanned } from './dataset.js';
import { parseIntField, readLines } from './lines.js';
import type { Dataset } from './types.js';

export interface RafDbOptions {
  root: string;
  /** Class list RAF-DB's labels 1..7 are mapped to by name. */
  classes?: readonly string[];
  /** Which images: by the `train_` / `test_` name prefix. */
  partition?: 'train' | 'test' | 'all';
}

const DEFAULTS = { classes: BASIC7_CLASSES, partition: 'all' } as const;

/**
 * Opens RAF-DB. Labels 1..7 (Surprise, Fear, Disgust, Happiness, Sadness, Anger, Neutral) are
 * mapped to the configured class list by name; RAF-DB has no identities, so each image is its
 * own group.
 *
 * @example
 * const train = await openRafDb({ root: 'data/RAF-DB/basic', partition: 'train' });
 */
export async function openRafDb(options: RafDbOptions): Promise<Dataset> {
  const { root, classes, partition } = { ...DEFAULTS, ...options };
  const labelFile = path.join(root, 'EmoLabel', 'list_patition_label.txt');
  const imageDir = path.join(root, 'Image', 'aligned');
  const indexOf = classIndexer(classes);
  const toClass = RAF_LABELS.map((name) => indexOf(name));
  return openScanned(classes, async function* (report) {
    const problem = (line: number, message: string) => report.problems.push({ file: labelFile, line, message });
    const exists = fileChecker(1);
    for await (const [n, text] of readLines(labelFile)) {
      if (text.trim() === '') continue;
      const fields = text.trim().split(/\s+/);
      if (fields.length !== 2) {
        problem(n, `expected "<image> <label>", got "${text}"`);
        continue;
      }
      const [name, raw] = fields;
      const value = parseIntField(raw);
      if (value === undefined) {
        problem(n, `label "${raw}" is not an integer`);
        continue;
      }
      if (value < 1 || value > RAF_LABELS.length) {
        problem(n, `label ${value} out of range 1..${RAF_LABELS.length}`);
        continue;
      }
      if (partition !== 'all' && !name.startsWith(`${partition}_`)) continue;
      const label = toClass[value - 1];
      if (label < 0) {
        report.unmapped++;
        continue;
      }
      const stem = name.replace(/\.[^.]+$/, '');
      const file = path.join(imageDir, `${stem}_aligned${path.extname(name) || '.jpg'}`);
      if (!(await exists(file))) {
        report.missingImages++;
        continue;
      }
      yield { path: file, label, group: stem };
    }
  });
}
