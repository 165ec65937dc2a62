/**
 * `npm run bench -- accuracy [DIR] [--limit N] [--weights DIR] [--batch N] [--systems LIST] [--detect [--border F]]`:
 * the project's model (arbex) and the expression models of @vladmandic/face-api and
 * @vladmandic/human on the same images in one run, each with its own preprocessing (systems.ts).
 * DIR (default data/fer2013/test) holds one folder per class, names matched to the classes
 * case-insensitively with the usual synonyms (angry/anger, happy/happiness, ...). One JSON line
 * per system:
 *   {bench:'accuracy', system, version, weights?, dir, images, accuracy, macroF1, perClassF1,
 *    imagesPerSecModel, imagesPerSecWall, machine}
 * macroF1 averages per-class F1 over the classes present in DIR (a prediction of a class DIR
 * lacks, such as arbex's Other, is a wrong answer but adds no class to the average).
 * imagesPerSecModel counts the model calls only (after one warm-up call); imagesPerSecWall adds
 * decoding and preprocessing. --limit N takes about N images, spread evenly over each class's
 * sorted files in proportion to the class sizes (at least one per class).
 *
 * --detect: the images are photos of any size, and each system finds the face itself with its
 * own detector (systems.ts loadDetectSystem; arbex as `arbex eval --images` without --crops)
 * and classifies the largest one. Every system gets the photo with the same black border
 * (--border, default 0.5 of the longer side, as src/eval/images.ts), then without it when it
 * found nothing. A photo where a system finds no face counts as wrong for it; the line adds
 *   mode:'detect', border, noFace (photos without a face found), foundAccuracy (right / photos
 *   with a face found)
 * and imagesPerSecModel is left out (detection and model are one call); imagesPerSecWall counts
 * decoding, detection and the model, one photo at a time.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/backends/index.js';
import { ROOT } from '../src/env.js';
import { intOption } from '../src/eval/options.js';
import { openFolderDataset } from '../src/model/data/folder.js';
import type { DataRecord } from '../src/model/data/types.js';
import { classificationReport } from '../src/model/metrics.js';
import { describeMachine, type Machine } from './machine.js';
import { ALL_CLASSES, DETECT_BORDER, loadDetectSystem, loadSystem, SYSTEMS, type DetectSystem, type System, type SystemName } from './systems.js';

export interface AccuracyOptions {
  /** One folder per class. */
  dir: string;
  /** arbex's model directory; default: the product's (ARBEX_WEIGHTS, else weights/fer). */
  weights?: string;
  /** About this many images, stratified by class; 0: every image. */
  limit: number;
  /** Images per model call. */
  batch: number;
  systems: readonly SystemName[];
  /** Each system finds the face in each image itself (photos of any size). */
  detect: boolean;
  /** With detect: the black border added before detection (fraction of the longer side). */
  border: number;
}

export interface AccuracyLine {
  bench: 'accuracy';
  system: SystemName;
  version: string;
  weights?: System['weights'];
  dir: string;
  images: number;
  accuracy: number;
  macroF1: number;
  perClassF1: Record<string, number>;
  /** Absent in detect mode (detection and model are one call). */
  imagesPerSecModel?: number;
  imagesPerSecWall: number;
  /** Detect mode only. */
  mode?: 'detect';
  border?: number;
  noFace?: number;
  foundAccuracy?: number;
  machine: Machine;
}

const DEFAULTS: AccuracyOptions = { dir: path.join(ROOT, 'data', 'fer2013', 'test'), limit: 0, batch: 64, systems: SYSTEMS, detect: false, border: DETECT_BORDER };

/** Column of the scores for an image in which the system found no face (detect mode). */
const NO_FACE = ALL_CLASSES.length;

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Evenly spaced picks from each class's sorted files, in proportion to the class sizes. */
function stratified(records: DataRecord[], limit: number): DataRecord[] {
  if (limit === 0 || limit >= records.length) return records;
  const byClass = new Map<number, DataRecord[]>();
  for (const r of records) byClass.set(r.label, [...(byClass.get(r.label) ?? []), r]);
  return [...byClass.values()].flatMap((list) => {
    const k = Math.max(1, Math.round((limit * list.length) / records.length));
    return Array.from({ length: k }, (_, i) => list[Math.floor((i * list.length) / k)]!);
  });
}

async function readImages(dir: string, limit: number): Promise<DataRecord[]> {
  if (!(await stat(dir).catch(() => null))?.isDirectory()) throw new Error(`${dir}: no such folder (unpack FER2013 as data/fer2013/{train,validation,test}/<class>/*.jpg, or pass DIR)`);
  const dataset = await openFolderDataset({ root: dir, classes: ALL_CLASSES });
  if (dataset.problems.length > 0) throw new Error(dataset.problems.map((p) => `${p.file}: ${p.message} (classes: ${ALL_CLASSES.join(', ')})`).join('\n'));
  const records: DataRecord[] = [];
  for await (const r of dataset.records()) records.push(r);
  if (records.length === 0) throw new Error(`${dir}: no images in class folders`);
  return stratified(records, limit);
}

/** Runs one system over the images: predicted ALL_CLASSES indices and the time spent. */
async function measure(system: System, images: DataRecord[], batch: number): Promise<{ predicted: number[]; modelMs: number; wallMs: number }> {
  const toAll = system.classes.map((c) => ALL_CLASSES.indexOf(c as (typeof ALL_CLASSES)[number]));
  await system.predict([await system.decode(images[0]!.path)]);
  const predicted: number[] = [];
  let modelMs = 0;
  const t0 = performance.now();
  for (let i = 0; i < images.length; i += batch) {
    const pixels = await Promise.all(images.slice(i, i + batch).map((r) => system.decode(r.path)));
    const m0 = performance.now();
    const probs = await system.predict(pixels);
    modelMs += performance.now() - m0;
    for (const p of probs) predicted.push(toAll[p.indexOf(Math.max(...p))]!);
  }
  return { predicted, modelMs, wallMs: performance.now() - t0 };
}

/** Detect mode: each photo through the system's own detector; NO_FACE where it finds none. */
async function measureDetect(system: DetectSystem, images: DataRecord[]): Promise<{ predicted: number[]; wallMs: number }> {
  const toAll = system.classes.map((c) => ALL_CLASSES.indexOf(c as (typeof ALL_CLASSES)[number]));
  await system.predictPhoto(images[0]!.path);
  const predicted: number[] = [];
  const t0 = performance.now();
  for (const r of images) {
    const p = await system.predictPhoto(r.path);
    predicted.push(p === null ? NO_FACE : toAll[p.indexOf(Math.max(...p))]!);
  }
  return { predicted, wallMs: performance.now() - t0 };
}

/**
 * Accuracy, macro F1 and per-class F1 of each system on the class folders of `dir`, one line
 * per system, scored with the project's metrics (src/model/metrics.ts).
 *
 * @example
 * const lines = await benchAccuracy({ dir: 'data/fer2013/test', limit: 300 });
 * for (const l of lines) console.log(l.system, l.accuracy, l.macroF1);
 */
export async function benchAccuracy(options: Partial<AccuracyOptions> = {}): Promise<AccuracyLine[]> {
  const { dir, weights, limit, batch, systems, detect, border } = { ...DEFAULTS, ...options };
  const backend = await initBackend(undefined, { log: false });
  const images = await readImages(dir, limit);
  const truth = images.map((r) => r.label);
  const lines: AccuracyLine[] = [];
  const columns = detect ? [...ALL_CLASSES, 'no face'] : ALL_CLASSES;
  for (const name of systems) {
    const system = detect ? await loadDetectSystem(name, { ...(weights !== undefined && { weights }), border }) : await loadSystem(name, weights === undefined ? {} : { weights });
    try {
      const { predicted, modelMs, wallMs } = detect ? { ...(await measureDetect(system as DetectSystem, images)), modelMs: undefined } : await measure(system as System, images, batch);
      const report = classificationReport(truth, predicted, columns);
      const present = report.perClass.slice(0, ALL_CLASSES.length).filter((c) => c.support > 0);
      const noFace = predicted.filter((p) => p === NO_FACE).length;
      lines.push({
        bench: 'accuracy',
        system: name,
        version: system.version,
        ...(system.weights && { weights: system.weights }),
        dir: path.relative(ROOT, path.resolve(dir)) || '.',
        images: images.length,
        accuracy: round(report.accuracy, 4),
        macroF1: round(present.reduce((a, c) => a + c.f1, 0) / present.length, 4),
        perClassF1: Object.fromEntries(present.map((c) => [c.class, round(c.f1, 4)])),
        ...(modelMs !== undefined && { imagesPerSecModel: round((images.length * 1000) / modelMs, 1) }),
        imagesPerSecWall: round((images.length * 1000) / wallMs, 1),
        ...(detect && {
          mode: 'detect' as const,
          border,
          noFace,
          foundAccuracy: round(images.length > noFace ? truth.filter((t, i) => predicted[i] === t).length / (images.length - noFace) : 0, 4),
        }),
        machine: describeMachine(backend),
      });
    } finally {
      system.dispose();
    }
  }
  return lines;
}

function borderOption(value: string | undefined, detect: boolean): number {
  if (value === undefined) return DEFAULTS.border;
  if (!detect) throw new Error('--border applies to --detect');
  const border = Number(value);
  if (!(border >= 0)) throw new Error(`--border must be a number >= 0 (got "${value}")`);
  return border;
}

export async function run(args: string[] = []): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { limit: { type: 'string' }, weights: { type: 'string' }, batch: { type: 'string' }, systems: { type: 'string' }, detect: { type: 'boolean' }, border: { type: 'string' } },
  });
  if (positionals.length > 1) throw new Error(`accuracy takes one DIR (got ${positionals.join(' ')})`);
  const systems = values.systems?.split(',').map((s) => s.trim());
  const unknown = systems?.filter((s) => !(SYSTEMS as readonly string[]).includes(s));
  if (unknown?.length) throw new Error(`--systems: unknown ${unknown.join(', ')} (known: ${SYSTEMS.join(', ')})`);
  const lines = await benchAccuracy({
    ...(positionals[0] !== undefined && { dir: positionals[0] }),
    ...(values.weights !== undefined && { weights: values.weights }),
    ...(systems && { systems: systems as SystemName[] }),
    limit: intOption('limit', values.limit, DEFAULTS.limit, 0),
    batch: intOption('batch', values.batch, DEFAULTS.batch, 1),
    detect: values.detect ?? false,
    border: borderOption(values.border, values.detect ?? false),
  });
  for (const line of lines) console.log(JSON.stringify(line));
}
