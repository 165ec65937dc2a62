/** POSTER++-style feature extractor (ARBEX-SPEC §1): config, presets, model. */
export * from './config.js';
export * from './extractor.js';
export * from './worker.js';
