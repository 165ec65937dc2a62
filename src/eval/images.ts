/**
 * Expression evaluation on still images laid out `<dir>/<class>/<image>` (FER2013's image
 * folders, or any set sorted that way). Folder names are matched to the model's classes with the
 * usual synonyms (angry/anger, happy/happiness, ...). Each image is either a face crop fed to the
 * model as is, or a photo in which the largest face is found and cropped as the live pipeline
 * crops it; an image without a face is missing, and counts as wrong.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { openFolderDataset } from '../model/data/folder.js';
import type { DataRecord } from '../model/data/types.js';
import { classificationReport, type ClassScores, type ConfusionMatrix } from '../model/metrics.js';
import type { FaceModel } from '../model/types.js';
import { cropFace } from '../pipeline/align/index.js';
import type { FaceDetector } from '../pipeline/detect/index.js';
import type { Frame } from '../pipeline/types.js';

/** Column of the confusion matrix that counts images without a face (detect mode). */
export const NO_FACE = 'no face';

export interface ImagesReport {
  /** crops: images fed as they are; detect: largest face found and cropped first. */
  mode: 'crops' | 'detect';
  dir: string;
  /** The model's classes: rows of the confusion matrix, entries of perClass. */
  classes: string[];
  /** Columns of the confusion matrix: the classes, then NO_FACE in detect mode. */
  columns: string[];
  /** Each class folder, the model class it was matched to and its image count. */
  folders: { folder: string; class: string; images: number }[];
  images: number;
  /** Images in which no face was found (detect mode; always 0 for crops). */
  missing: number;
  /** Right / all images (a missing face is wrong). */
  accuracy: number;
  /** Right / images with a face: the model alone, detection failures left out. */
  foundAccuracy: number;
  /** Macro F1 over the classes that have images (macroF1Classes). */
  macroF1: number;
  macroF1Classes: string[];
  perClass: (ClassScores & { class: string })[];
  /** confusion[true][column]. */
  confusion: ConfusionMatrix;
  /** Wall time of the whole run: decoding, detection and the model. */
  seconds: number;
  imagesPerSecond: number;
  /** Detect mode: the border added around each image before detection (fraction of its longer side). */
  border?: number;
}

export interface ImagesOptions {
  dir: string;
  model: FaceModel;
  /** A face detector puts evaluation in detect mode; without one each image is a crop. */
  detector?: FaceDetector;
  /**
   * Detect mode: black border added on every side before detection, as a fraction of the image's
   * longer side (an image without a face is tried again without it). BlazeFace misses faces that
   * fill the frame, as in face crops such as FER2013's; docs/EVAL.md has the measurements.
   */
  border: number;
  /** Images per model call. */
  batchSize: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

const DEFAULTS = { border: 0.5, batchSize: 32 };

/** Decodes an image file to a frame (EXIF orientation applied), with a black border of `border` x its longer side. */
export async function decodeFrame(file: string, border: number): Promise<Frame> {
  const img = sharp(file);
  const { width = 0, height = 0 } = await img.metadata();
  const pad = Math.round(border * Math.max(width, height));
  const { data, info } = await img
    .rotate()
    .removeAlpha()
    .toColourspace('srgb')
    .extend({ top: pad, bottom: pad, left: pad, right: pad, background: { r: 0, g: 0, b: 0 } })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { index: 0, ptsMs: 0, width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/**
 * The model's crop of the largest face in the image, or null when there is none. The image is
 * searched with the border first, then, when no face is found, as it is (on FER2013 about 1 % of
 * the faces are found only that way).
 */
export async function detectCrop(file: string, model: FaceModel, detector: FaceDetector, border: number): Promise<Uint8Array | null> {
  for (const b of border > 0 ? [border, 0] : [0]) {
    const frame = await decodeFrame(file, b);
    detector.reset(); // every image is a new scene: nothing tracked from the previous one
    const faces = await detector.detect(frame);
    if (faces.length === 0) continue;
    const largest = faces.reduce((x, y) => (y.box.w * y.box.h > x.box.w * x.box.h ? y : x));
    return cropFace(frame, largest.landmarks5, model);
  }
  return null;
}

/**
 * Scores the model on every image under `dir`. Refuses a folder that matches no model class
 * (naming every such folder), and a `dir` that is missing or holds no class folder with images.
 *
 * @example
 * const report = await evaluateImages({ dir: 'data/fer2013/test', model });             // crops
 * const found = await evaluateImages({ dir: 'photos', model, detector: await createFaceDetector({ detectEvery: 1 }) });
 * console.log(report.accuracy, report.macroF1);
 */
export async function evaluateImages(options: Partial<ImagesOptions> & Pick<ImagesOptions, 'dir' | 'model'>): Promise<ImagesReport> {
  const { dir, model, detector, border, batchSize, signal, onProgress } = { ...DEFAULTS, ...options };
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new Error(`${dir}: no such folder (expected <dir>/<class>/<image>)`);
  const classes = [...model.classes];
  const dataset = await openFolderDataset({ root: dir, classes });
  if (dataset.problems.length > 0) {
    const unknown = dataset.problems.map((p) => `"${path.basename(p.file)}"`);
    throw new Error(`${dir}: folder${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} match${unknown.length > 1 ? '' : 'es'} no class of the model (${classes.join(', ')})`);
  }
  const total = dataset.counts.records;
  if (total === 0) throw new Error(`${dir}: no images in class folders (expected <dir>/<class>/<image>, classes ${classes.join(', ')})`);

  const mode = detector ? 'detect' : 'crops';
  const columns = detector ? [...classes, NO_FACE] : classes;
  const truth: number[] = [];
  const predicted: number[] = [];
  const folders = new Map<string, { folder: string; class: string; images: number }>();
  const start = performance.now();
  let pending: { record: DataRecord; crop: Uint8Array }[] = [];
  const flush = async () => {
    const preds = await model.predict(pending.map((p) => p.crop));
    pending.forEach((p, i) => {
      truth.push(p.record.label);
      predicted.push(preds[i]!.labelIndex);
    });
    pending = [];
    onProgress?.(truth.length, total);
  };
  for await (const record of dataset.records()) {
    signal?.throwIfAborted();
    const folder = path.basename(path.dirname(record.path));
    const entry = folders.get(folder) ?? { folder, class: classes[record.label]!, images: 0 };
    entry.images++;
    folders.set(folder, entry);
    const crop = await (detector ? detectCrop(record.path, model, detector, border) : dataset.load(record, model.inputSize)).catch((e: Error) => {
      throw new Error(`${record.path}: ${e.message}`);
    });
    if (crop === null) {
      truth.push(record.label);
      predicted.push(classes.length);
      continue;
    }
    pending.push({ record, crop });
    if (pending.length >= batchSize) await flush();
  }
  if (pending.length > 0) await flush();
  const seconds = (performance.now() - start) / 1000;

  const report = classificationReport(truth, predicted, columns);
  const perClass = report.perClass.slice(0, classes.length);
  const scored = perClass.filter((c) => c.support > 0);
  const missing = predicted.filter((p) => p === classes.length).length;
  const right = classes.reduce((sum, _, c) => sum + report.confusion[c]![c]!, 0);
  return {
    mode,
    dir,
    classes,
    columns,
    folders: [...folders.values()],
    images: total,
    missing,
    accuracy: report.accuracy,
    foundAccuracy: total > missing ? right / (total - missing) : 0,
    macroF1: scored.reduce((sum, c) => sum + c.f1, 0) / scored.length,
    macroF1Classes: scored.map((c) => c.class),
    perClass,
    confusion: report.confusion.slice(0, classes.length),
    seconds,
    imagesPerSecond: total / seconds,
    ...(detector ? { border } : {}),
  };
}
