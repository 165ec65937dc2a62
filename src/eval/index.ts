/**
 * Offline labelling and Aff-Wild2 (ABAW) expression evaluation.
 *
 * @example
 * const annotations = await readAnnotationDir('abaw/annotations');
 * const raw = await collectCrops(annotations, 'abaw/cropped_aligned', model, { batchSize: 32 });
 * const { report, rows } = scoreSeries(annotations, raw, { mode: 'crops', modelClasses: model.classes, smoothing: { kind: 'centred', window: 25 }, missing: 'interpolate' });
 * console.log(report.macroF1);
 */
export { AnnotationError, checkFrameCount, readAnnotation, readAnnotationDir, splitAnnotationName, type Annotation, type Side } from './annotations.js';
export { collectCrops, collectVideos, findVideo, pickTrack, scoreSeries, type EvalReport, type Evaluation, type FrameCounts, type RawSeries, type ScoreOptions } from './evaluate.js';
export { confusionSvg, imagesReportHtml, reportHtml } from './html.js';
export { evaluateImages, NO_FACE, type ImagesOptions, type ImagesReport } from './images.js';
export { formatOf, labelToFile, videosIn, type LabelFileOptions, type LabelFileResult, type LabelFormat } from './label.js';
export { openAtomic, writeFileAtomic, type AtomicFile } from '../pipeline/output.js';
export { predictionLine, predictionsHeader, readPredictions, type PredictionRow } from './predictions.js';
export { createProgress, progressText, type Progress } from './progress.js';
export { abawIndexOf, scorePredictions, type Scores, type VideoScore } from './score.js';
export { predictSeries, type FramePrediction, type MissingPolicy } from './series.js';
export { buildSubmission, type Submission, type SubmissionFormat } from './submission.js';
