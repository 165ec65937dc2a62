/** The ARBEx reliability-balancing head: config, model, losses, training. */
export * from './config.js';
export * from './head.js';
export * from './losses.js';
export * from './train.js';
export { confidence, stopGradient } from './ops.js';
export { sampleAttention, type SampleAttentionOptions } from './attention.js';
