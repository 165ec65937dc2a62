/**
 * Synthetic FERG-style cartoon faces with Aff-Wild2 labels: rendering, sampling, splits, label
 * noise, video scripts and the data-set writer (wired as `arbex synth`).
 *
 * @example
 * import { generateDataset } from './model/data/synth/index.js';
 * await generateDataset({ out: 'data/synth', identities: 30, imagesPerClass: 100, videos: 4, seed: 7 });
 */
export { CLASSES, NUM_CLASSES, classIndex, type ClassName } from './classes.js';
export { expression, expressionFeatures, dominantLabel, FEATURE_NAMES, type ExpressionState, type Features, type OtherVariant } from './expression.js';
export { sampleIdentity, HAIR_STYLES, NOSE_STYLES, type Identity } from './identity.js';
export { renderFace, renderScene, sceneSvg, DEFAULT_POSE, DEFAULT_LIGHTING, type FaceParams, type Pose, type Lighting, type RenderOptions, type ImageFormat } from './render.js';
export { sampleFaceParams, DEFAULT_JITTER, NO_JITTER, type JitterOptions } from './sample.js';
export { applyLabelNoise, FLIP_TO, NO_NOISE, type LabelNoise, type NoiseKind } from './noise.js';
export { splitIdentities, SPLIT_NAMES, DEFAULT_SPLITS, type SplitFractions, type SplitName } from './splits.js';
export { scriptTrack, trackFrame, alignedFrame, openMp4, VIDEO_DEFAULTS, type VideoTrack, type VideoScriptOptions } from './video.js';
export { generateDataset, DATASET_DEFAULTS, type DatasetOptions, type DatasetSummary, type VideoEntry } from './dataset.js';
export { contactSheet, type ContactSheetOptions } from './contact-sheet.js';
