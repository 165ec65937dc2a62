/** Training ARBEx: config file, data specs, the training loop, evaluation, curves, progress. */
export * from './config.js';
export * from './data.js';
export * from './train.js';
export * from './evaluate.js';
export { createProgress, formatDuration, type Progress, type ProgressOptions } from './progress.js';
export { curvesSvg, writeCurvesPng, type Panel, type Series } from './curves.js';
