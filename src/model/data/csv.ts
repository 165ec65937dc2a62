/** CSV data sets: rows `path,label[,group]`, paths relative to the CSV file's folder. */
import path from 'node:path';
import { canonicalClass, classIndexer } from './classes.js';
import { fileChecker, isImageFile, openScanned } from './dataset.js';
import { parseIntField, readLines, splitCsvLine } from './lines.js';
import type { Dataset } from './types.js';

export interface CsvOptions {
  file: string;
  /** Class list; a label is a name from it (matched by name) or a 0-based index into it. */
  classes: readonly string[];
}

interface Columns {
  path: number;
  label: number;
  group: number;
}

const POSITIONAL: Columns = { path: 0, label: 1, group: 2 };

/**
 * Opens a CSV list of images. The header is optional: a first row whose first field is not an
 * image file name is read as a header, which must name `path` and `label` columns (`group`
 * optional, any order); a bad header skips the file, reported. Without a group column each image is its own group.
 * Malformed rows are reported as problems and skipped; so is the first row of each class name
 * that is not in the class list (later rows of that name are only counted as unmapped).
 *
 * @example
 * const ds = await openCsvDataset({ file: 'data/train.csv', classes: BASIC7_CLASSES });
 */
export async function openCsvDataset(options: CsvOptions): Promise<Dataset> {
  const { file, classes } = options;
  const dir = path.dirname(path.resolve(file));
  const indexOf = classIndexer(classes);
  return openScanned(classes, async function* (report) {
    const problem = (line: number, message: string) => report.problems.push({ file, line, message });
    const exists = fileChecker();
    const unknownNames = new Set<string>();
    let cols: Columns | undefined;
    for await (const [n, text] of readLines(file)) {
      if (text.trim() === '') continue;
      const fields = splitCsvLine(text);
      if (!fields) {
        problem(n, 'unterminated quote');
        continue;
      }
      if (!cols) {
        const header = headerColumns(fields);
        if (typeof header === 'string') {
          problem(n, `bad header "${text}": ${header}; file skipped`);
          return;
        }
        cols = header ?? POSITIONAL;
        if (header) continue;
      }
      const width = Math.max(cols.path, cols.label) + 1;
      if (fields.length < width) {
        problem(n, `expected at least ${width} columns, got ${fields.length}`);
        continue;
      }
      const rel = fields[cols.path];
      if (rel === '') {
        problem(n, 'missing path');
        continue;
      }
      const raw = fields[cols.label];
      const asInt = parseIntField(raw);
      let label: number;
      if (asInt !== undefined) {
        if (asInt < 0 || asInt >= classes.length) {
          problem(n, `label ${asInt} out of range 0..${classes.length - 1}`);
          continue;
        }
        label = asInt;
      } else if (raw === '' || Number.isFinite(Number(raw))) {
        problem(n, `label "${raw}" is not an integer or a class name`);
        continue;
      } else {
        label = indexOf(raw);
        if (label < 0) {
          report.unmapped++;
          const key = canonicalClass(raw);
          if (!unknownNames.has(key)) problem(n, `class "${raw}" is not in the class list; its rows are skipped`);
          unknownNames.add(key);
          continue;
        }
      }
      const abs = path.resolve(dir, rel);
      if (!(await exists(abs))) {
        report.missingImages++;
        continue;
      }
      const group = cols.group < fields.length && fields[cols.group] !== '' ? fields[cols.group] : rel;
      yield { path: abs, label, group };
    }
  });
}

/**
 * Reads the first row: column positions when it is a header, undefined when it is a data row (its
 * first field names an image file), an error message when it is neither or lacks needed columns.
 */
function headerColumns(fields: string[]): Columns | string | undefined {
  const names = fields.map((f) => f.toLowerCase());
  const p = names.indexOf('path');
  const l = names.indexOf('label');
  if (p >= 0 && l >= 0) return { path: p, label: l, group: names.includes('group') ? names.indexOf('group') : Infinity };
  if (p < 0 && l >= 0) return 'missing path column';
  if (p >= 0) return 'missing label column';
  return isImageFile(fields[0]) ? undefined : 'expected a header path,label[,group] or rows starting with an image path';
}
