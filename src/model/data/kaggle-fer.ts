/**
 * FER2013 as Kaggle ships it: one `fer2013.csv` with the header `emotion,pixels,Usage`, one image
 * per row: emotion 0..6 (Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral), pixels = 2304
 * space-separated grey values 0..255 of a 48x48 image (row-major), Usage Training, PublicTest or
 * PrivateTest. (The image-folder copy of FER2013 is read by folder.ts.)
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { BASIC7_CLASSES, classIndexer, FER2013_LABELS } from './classes.js';
import { openScanned } from './dataset.js';
import { parseIntField, readLocatedLines, splitCsvLine } from './lines.js';
import type { DataRecord, Dataset } from './types.js';

/** FER2013's splits: PublicTest is the usual validation set, PrivateTest the test set. */
export const FER2013_USAGES = ['Training', 'PublicTest', 'PrivateTest'] as const;
export type Fer2013Usage = (typeof FER2013_USAGES)[number];

/** Side of a FER2013 image. */
export const FER2013_SIZE = 48;
const PIXELS = FER2013_SIZE * FER2013_SIZE;

export interface Fer2013CsvOptions {
  file: string;
  /** Class list FER2013's seven labels are mapped to by name; labels not in it are skipped. */
  classes?: readonly string[];
  /** Rows of these splits only (default: all three). */
  usage?: readonly Fer2013Usage[];
}

const DEFAULTS = { classes: BASIC7_CLASSES, usage: FER2013_USAGES } as const;

interface Columns {
  emotion: number;
  pixels: number;
  usage: number;
  count: number;
}

/** Column positions from the header row, or what is wrong with it. */
function headerColumns(text: string): Columns | string {
  const names = (splitCsvLine(text) ?? []).map((f) => f.toLowerCase());
  const [emotion, pixels, usage] = ['emotion', 'pixels', 'usage'].map((n) => names.indexOf(n));
  const lacking = ['emotion', 'pixels', 'Usage'].filter((_, i) => [emotion, pixels, usage][i]! < 0);
  if (lacking.length > 0) return `missing header: expected emotion,pixels,Usage, got "${text.slice(0, 80)}" (no ${lacking.join(', ')} column)`;
  return { emotion: emotion!, pixels: pixels!, usage: usage!, count: names.length };
}

const isSpace = (c: number) => c === 32 || c === 9;

/** 2304 space-separated whole numbers 0..255 → grey bytes, or what is wrong with them. */
export function parseFer2013Pixels(text: string): Uint8Array | string {
  const out = new Uint8Array(PIXELS);
  let n = 0;
  for (let i = 0; i < text.length; ) {
    if (isSpace(text.charCodeAt(i))) {
      i++;
      continue;
    }
    let end = i;
    while (end < text.length && !isSpace(text.charCodeAt(end))) end++;
    let value = 0;
    for (let k = i; k < end; k++) {
      const digit = text.charCodeAt(k) - 48;
      if (digit < 0 || digit > 9) return `pixel ${n + 1} "${text.slice(i, end)}" is not a whole number`;
      value = value * 10 + digit;
    }
    if (value > 255) return `pixel ${n + 1} value ${text.slice(i, end)} out of range 0..255`;
    if (n < PIXELS) out[n] = value;
    n++;
    i = end;
  }
  if (n !== PIXELS) return `expected ${PIXELS} pixel values (48x48), got ${n}`;
  return out;
}

/** Grey 48x48 bytes → size*size*3 RGB, resized as decodeRgb resizes image files. */
async function greyToRgb(grey: Uint8Array, size: number): Promise<Uint8Array> {
  const { data, info } = await sharp(grey, { raw: { width: FER2013_SIZE, height: FER2013_SIZE, channels: 1 } })
    .toColourspace('srgb')
    .resize(size, size, { fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`FER2013 image decoded to ${info.channels} channels, expected 3`);
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/**
 * Opens the Kaggle `fer2013.csv`, streaming it line by line. Rows are checked as they are read;
 * a malformed row (wrong column count, emotion not an integer 0..6, not 2304 pixel values 0..255,
 * unknown Usage) is reported with its file and line and skipped, and a file without the
 * `emotion,pixels,Usage` header is reported and skipped whole. Rows of splits not asked for are
 * passed over after their column count and Usage are checked. Records name `<file>:<line>` and
 * the row's bytes; `load` re-reads just that row. FER2013 has no identities: each image is its
 * own group.
 *
 * @example
 * const train = await openFer2013Csv({ file: 'data/fer2013.csv', usage: ['Training'] });
 * for (const p of train.problems) console.warn(`${p.file}:${p.line} ${p.message}`);
 */
export async function openFer2013Csv(options: Fer2013CsvOptions): Promise<Dataset> {
  const { file, classes, usage } = { ...DEFAULTS, ...options };
  const abs = path.resolve(file);
  const indexOf = classIndexer(classes);
  const toClass = FER2013_LABELS.map((name) => indexOf(name));
  const wanted = new Set<string>(usage);
  const unknownUsage = usage.filter((u) => !(FER2013_USAGES as readonly string[]).includes(u));
  if (unknownUsage.length > 0) throw new Error(`${file}: usage ${unknownUsage.map((u) => `"${u}"`).join(', ')} is not one of ${FER2013_USAGES.join(', ')}`);
  // Set by the scan that openScanned runs before returning, so known before any load.
  let pixelsColumn = -1;

  const dataset = await openScanned(classes, async function* (report) {
    const problem = (line: number, message: string) => report.problems.push({ file, line, message });
    let cols: Columns | undefined;
    for await (const { line, text, offset, length } of readLocatedLines(abs)) {
      if (text.trim() === '') continue;
      if (!cols) {
        const header = headerColumns(text);
        if (typeof header === 'string') {
          problem(line, `${header}; file skipped`);
          return;
        }
        cols = header;
        pixelsColumn = header.pixels;
        continue;
      }
      const fields = splitCsvLine(text);
      if (!fields || fields.length !== cols.count) {
        problem(line, fields ? `expected ${cols.count} columns, got ${fields.length}` : 'unterminated quote');
        continue;
      }
      const split = fields[cols.usage]!;
      if (!(FER2013_USAGES as readonly string[]).includes(split)) {
        problem(line, `Usage "${split}" is not one of ${FER2013_USAGES.join(', ')}`);
        continue;
      }
      if (!wanted.has(split)) continue;
      const raw = fields[cols.emotion]!;
      const emotion = parseIntField(raw);
      if (emotion === undefined) {
        problem(line, `emotion "${raw}" is not an integer`);
        continue;
      }
      if (emotion < 0 || emotion >= FER2013_LABELS.length) {
        problem(line, `emotion ${emotion} out of range 0..${FER2013_LABELS.length - 1}`);
        continue;
      }
      const pixels = parseFer2013Pixels(fields[cols.pixels]!);
      if (typeof pixels === 'string') {
        problem(line, pixels);
        continue;
      }
      const label = toClass[emotion]!;
      if (label < 0) {
        report.unmapped++;
        continue;
      }
      const id = `${abs}:${line}`;
      yield { path: id, label, group: id, span: { offset, length } };
    }
  });

  async function load(record: DataRecord, size: number): Promise<Uint8Array> {
    const { span } = record;
    if (!span) throw new Error(`${record.path}: not a FER2013 CSV record (no row span)`);
    const handle = await open(abs, 'r');
    const row = Buffer.alloc(span.length);
    try {
      await handle.read(row, 0, span.length, span.offset);
    } finally {
      await handle.close();
    }
    const fields = splitCsvLine(row.toString('utf8'));
    const grey = fields && fields[pixelsColumn] !== undefined ? parseFer2013Pixels(fields[pixelsColumn]) : 'row changed since the file was opened';
    if (typeof grey === 'string') throw new Error(`${record.path}: ${grey}`);
    return greyToRgb(grey, size);
  }
  return { ...dataset, load };
}
