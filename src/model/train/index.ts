/** Training ARBEx: config file, data specs, the training loop, checkpoints, the feature cache, evaluation, curves, progress. */
export * from './config.js';
export * from './data.js';
export * from './train.js';
export * from './checkpoint.js';
export * from './adam.js';
export * from './feature-cache.js';
export * from './evaluate.js';
export { createProgress, formatDuration, type Progress, type ProgressOptions } from './progress.js';
export { curvesSvg, writeCurvesPng, type Panel, type Series } from './curves.js';
