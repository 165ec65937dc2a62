/** Data sets, the ARBEx refinement sampler, augmentation and batching for training. */
export type { DataRecord, Dataset, DatasetCounts, Problem } from './types.js';
export { ABAW_CLASSES, BASIC7_CLASSES, FER2013_LABELS, RAF_LABELS, canonicalClass, classIndexer } from './classes.js';
export { decodeRgb } from './dataset.js';
export { openFolderDataset, type FolderOptions } from './folder.js';
export { openCsvDataset, type CsvOptions } from './csv.js';
export { openRafDb, type RafDbOptions } from './rafdb.js';
export { FER2013_USAGES, openFer2013Csv, parseFer2013Pixels, type Fer2013CsvOptions, type Fer2013Usage } from './kaggle-fer.js';
export { openAbaw, type AbawOptions } from './abaw.js';
export { refineSampler, shuffleInPlace, type RefineOptions, type RefinedEpoch, type RefineSampler } from './sampler.js';
export { createAugmenter, type AugmentOptions, type AugmentParams, type Augmenter } from './augment.js';
export { createBatchLoader, type Batch, type BatchLoader, type LoaderOptions } from './loader.js';
