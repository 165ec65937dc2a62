/**
 * The parts every reader shares: a scan that streams records and reports what it skips, image
 * decoding with sharp, and cheap existence checks through directory listings.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { DataRecord, Dataset, DatasetCounts, Problem } from './types.js';

/** What a scan reports besides its records. */
export interface ScanReport {
  problems: Problem[];
  missingImages: number;
  unlabelled: number;
  unmapped: number;
}

/** Streams a data set's usable records, adding everything it skips to `report`. */
export type Scan = (report: ScanReport) => AsyncGenerator<DataRecord>;

/** Extensions read as images; other files in image folders (notes, .DS_Store) are ignored. */
const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif']);

export function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase());
}

function emptyReport(): ScanReport {
  return { problems: [], missingImages: 0, unlabelled: 0, unmapped: 0 };
}

/**
 * Opens a data set: runs the scan once to collect problems and counts (nothing is kept but the
 * totals), then re-runs it from disk each time `records()` is called.
 */
export async function openScanned(classes: readonly string[], scan: Scan): Promise<Dataset> {
  const report = emptyReport();
  const perClass = new Array<number>(classes.length).fill(0);
  let records = 0;
  for await (const r of scan(report)) {
    perClass[r.label]++;
    records++;
  }
  const counts: DatasetCounts = {
    records,
    perClass,
    missingImages: report.missingImages,
    unlabelled: report.unlabelled,
    unmapped: report.unmapped,
  };
  return {
    classes: [...classes],
    problems: report.problems,
    counts,
    // Later scans re-read the same files; their reports were already collected above.
    records: () => scan(emptyReport()),
    load: (record, size) => decodeRgb(record.path, size),
  };
}

/**
 * Decodes an image file to size*size*3 RGB bytes. The image is stretched to the square
 * (fit "fill"): aligned face crops are square already, and nothing of the face is cut off.
 */
export async function decodeRgb(file: string, size: number): Promise<Uint8Array> {
  const { data, info } = await sharp(file)
    .removeAlpha()
    .toColourspace('srgb')
    .resize(size, size, { fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || data.length !== size * size * 3) {
    throw new Error(`${file}: decoded to ${info.width}x${info.height}x${info.channels}, expected ${size}x${size}x3`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/**
 * Answers "does this file exist?" from directory listings, keeping only the last few listings so
 * that memory stays bounded while rows sorted by folder cost one readdir per folder.
 */
export function fileChecker(keep = 8): (file: string) => Promise<boolean> {
  const listings = new Map<string, Promise<Set<string>>>();
  return async (file) => {
    const dir = path.dirname(file);
    let names = listings.get(dir);
    if (names) {
      listings.delete(dir); // re-insert: Map order is the recency order
    } else {
      names = readdir(dir).then(
        (list) => new Set(list),
        () => new Set<string>(),
      );
      if (listings.size >= keep) listings.delete(listings.keys().next().value as string);
    }
    listings.set(dir, names);
    return (await names).has(path.basename(file));
  };
}
