/** Training-test setup shared by the train tests: the tiny preset's configs, a synthetic set, quiet output. */
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ABAW_CLASSES } from '../../src/model/data/classes.js';
import type { Dataset } from '../../src/model/data/index.js';
import { generateDataset } from '../../src/model/data/synth/index.js';
import { createProgress, openDataSpec, parseDataSpec, type EpochRecord } from '../../src/model/train/index.js';

/** The eight ABAW classes, as the synthetic data set names them. */
export const CLASSES: string[] = [...ABAW_CLASSES];

/** A tiny-preset ARBEx model config (JSON) with the given head width and dropout. */
export function tinyModelJson(head: { hidden: number[]; dropout: number }) {
  return { classes: CLASSES, extractor: 'tiny', head: { ...head, anchorsPerClass: 2, attention: { tokens: 4, heads: 2 } } };
}

/** A training config (JSON) for the tiny preset: batches of 8, learning rate 1e-3, resize 44; the rest as given. */
export function tinyTrainJson(o: { head: { hidden: number[]; dropout: number }; epochs: number; evalBatchSize: number; perClass: number; seed: number }) {
  const { head, ...rest } = o;
  return {
    model: tinyModelJson(head),
    epochs: rest.epochs,
    batchSize: 8,
    evalBatchSize: rest.evalBatchSize,
    perClass: rest.perClass,
    learningRate: 1e-3,
    augment: { resize: 44 },
    seed: rest.seed,
  };
}

/** Training options that print nothing. */
export const quietTraining = { log: () => undefined, progress: createProgress({ write: () => undefined }) };

/** The epoch records a run wrote to `out/metrics.jsonl`. */
export async function epochLines(out: string): Promise<EpochRecord[]> {
  return (await readFile(path.join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
}

/**
 * A fresh temp folder (named from `prefix`) with a synthetic data set of 8 identities at 44 px
 * (seed 3) under data/, and its train split opened, grouped by identity.
 */
export async function syntheticTrainSet(prefix: string, imagesPerClass: number): Promise<{ dir: string; train: Dataset }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  await generateDataset({ out: path.join(dir, 'data'), identities: 8, imagesPerClass, videos: 0, size: 44, seed: 3 });
  const train = await openDataSpec(parseDataSpec(`folder:${dir}/data/train,group=prefix`), CLASSES);
  return { dir, train };
}
