/** Feature extractors (POSTER++-style, docs/MODEL-SPEC.md §1, and the compact grey CNN): config, presets, model. */
export * from './config.js';
export * from './cnn.js';
export * from './extractor.js';
export * from './worker.js';
