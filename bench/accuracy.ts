/**
 * `npm run bench -- accuracy [DIR] [--limit N] [--weights DIR] [--batch N] [--systems LIST]`:
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
import { ALL_CLASSES, loadSystem, SYSTEMS, type System, type SystemName } from './systems.js';

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
  imagesPerSecModel: number;
  imagesPerSecWall: number;
  machine: Machine;
}

const DEFAULTS: AccuracyOptions = { dir: path.join(ROOT, 'data', 'fer2013', 'test'), limit: 0, batch: 64, systems: SYSTEMS };

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

/**
 * Accuracy, macro F1 and per-class F1 of each system on the class folders of `dir`, one line
 * per system, scored with the project's metrics (src/model/metrics.ts).
 *
 * @example
 * const lines = await benchAccuracy({ dir: 'data/fer2013/test', limit: 300 });
 * for (const l of lines) console.log(l.system, l.accuracy, l.macroF1);
 */
export async function benchAccuracy(options: Partial<AccuracyOptions> = {}): Promise<AccuracyLine[]> {
  const { dir, weights, limit, batch, systems } = { ...DEFAULTS, ...options };
  const backend = await initBackend(undefined, { log: false });
  const images = await readImages(dir, limit);
  const truth = images.map((r) => r.label);
  const lines: AccuracyLine[] = [];
  for (const name of systems) {
    const system = await loadSystem(name, weights === undefined ? {} : { weights });
    try {
      const { predicted, modelMs, wallMs } = await measure(system, images, batch);
      const report = classificationReport(truth, predicted, ALL_CLASSES);
      const present = report.perClass.filter((c) => c.support > 0);
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
        imagesPerSecModel: round((images.length * 1000) / modelMs, 1),
        imagesPerSecWall: round((images.length * 1000) / wallMs, 1),
        machine: describeMachine(backend),
      });
    } finally {
      system.dispose();
    }
  }
  return lines;
}

export async function run(args: string[] = []): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { limit: { type: 'string' }, weights: { type: 'string' }, batch: { type: 'string' }, systems: { type: 'string' } },
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
  });
  for (const line of lines) console.log(JSON.stringify(line));
}
