/**
 * `arbex eval`: expression evaluation on images sorted into class folders (`--images`), or
 * frame-level evaluation on Aff-Wild2 / ABAW annotations (`--annotations`).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../backends/index.js';
import { readSettings } from '../env.js';
import {
  abawIndexOf,
  buildSubmission,
  collectCrops,
  collectVideos,
  createProgress,
  evaluateImages,
  imagesReportHtml,
  openAtomic,
  predictionLine,
  predictionsHeader,
  predictSeries,
  readAnnotationDir,
  reportHtml,
  scoreSeries,
  writeFileAtomic,
  type EvalReport,
  type ImagesReport,
  type MissingPolicy,
} from '../eval/index.js';
import { intOption, smoothingOption, windowList } from '../eval/options.js';
import { loadFaceModel } from '../model/face-model.js';
import { createFaceDetector } from '../pipeline/detect/index.js';
import { createEngine } from '../pipeline/engine.js';
import { SMOOTHING } from '../pipeline/smooth/index.js';

const IMAGES_USAGE = `usage: arbex eval --images DIR [--crops] [options]

Scores the model on DIR/<class>/<image>: one folder per class, named like a model class or a
usual synonym (angry/anger, happy/happiness, sad/sadness, fear/fearful, disgust/disgusted,
surprise/surprised, neutral, contempt; any case). --crops: each image is a face crop, resized to
the model's input and fed as is. Without it the largest face in each image is detected and cropped
as the live pipeline crops it; an image without a face counts as missing, and wrong.

options:
  --weights DIR      model directory (default: ARBEX_WEIGHTS or weights/fer)
  --border F         without --crops: black border added on each side before detection, as a
                     fraction of the image's longer side (default 0.5; see docs/EVAL.md)
  --out FILE         report as JSON
  --html FILE        report as a self-contained HTML page
  --batch-size N     images per model call (default 32)
  --workers N        model worker threads (default 0: in this thread)`;

const USAGE = `${IMAGES_USAGE}

usage: arbex eval --annotations DIR (--crops DIR | --videos DIR) [options]

Scores frame-level expression predictions against ABAW annotation files (header
Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other; line i+1 = frame i; -1 not scored).
--crops reads cropped_aligned/<name>/<i:05d>.jpg; --videos runs every video through the full
pipeline (a <video>_left / _right annotation follows the left-most / right-most face track).

options:
  --weights DIR               model directory (default: ARBEX_WEIGHTS or weights/fer)
  --smoothing KIND            none | ema | trailing | centred (default none)
  --window N                  trailing length / centred half-width in frames (default ${SMOOTHING.trailingWindow} / ${SMOOTHING.centredWindow}, at most ${SMOOTHING.maxWindow})
  --alpha A                   EMA weight of the newest frame, in (0, 1] (default ${SMOOTHING.alpha})
  --missing interpolate|skip  frames without image / face: interpolated (default) or not scored
  --sweep-smoothing LIST      also report macro F1 for these centred half-widths, e.g. 0,5,10,25,50
  --out FILE                  report as JSON
  --html FILE                 report as a self-contained HTML page
  --predictions FILE          the scored per-frame predictions (video,frame,label,p_<class>...)
  --submission DIR|FILE       ABAW test submission: a .txt/.csv FILE in the single-file format
                              (image_location,...), else a folder of one <name>.txt per video
  --batch-size N              crops per model call (default 32)
  --workers N                 model worker threads (default 0: in this thread)`;

function summary(r: EvalReport): string {
  const pct = (x: number) => (100 * x).toFixed(2);
  const f = r.frames;
  const lines = [
    `macro F1 ${pct(r.macroF1)} (ABAW: mean over all 8 classes)  accuracy ${pct(r.accuracy)}  (over the classes present only ${pct(r.macroF1Present)})`,
    `frames: ${f.evaluated} evaluated / ${f.annotated} annotated, ${f.ignored} marked -1, ${f.missing} missing (${f.interpolated} interpolated), ${f.unscored} unscored`,
    ...r.perClass.map((c) => `  ${c.class.padEnd(10)} P ${pct(c.precision).padStart(6)}  R ${pct(c.recall).padStart(6)}  F1 ${pct(c.f1).padStart(6)}  n ${c.support}`),
  ];
  for (const s of r.sweep ?? []) lines.push(`  centred ±${String(s.window).padEnd(4)} macro F1 ${pct(s.macroF1)}  accuracy ${pct(s.accuracy)}`);
  return lines.join('\n');
}

function imagesSummary(r: ImagesReport): string {
  const pct = (x: number) => (100 * x).toFixed(2);
  return [
    `accuracy ${pct(r.accuracy)}  macro F1 ${pct(r.macroF1)} (over ${r.macroF1Classes.length} classes with images)  accuracy on found faces ${pct(r.foundAccuracy)}`,
    `images: ${r.images}, ${r.missing} without a face; ${r.imagesPerSecond.toFixed(1)} images/s`,
    ...r.perClass.map((c) => `  ${c.class.padEnd(10)} P ${pct(c.precision).padStart(6)}  R ${pct(c.recall).padStart(6)}  F1 ${pct(c.f1).padStart(6)}  n ${c.support}`),
  ].join('\n');
}

/** Aborts `controller` on Ctrl-C while `work` runs; 130 (and nothing written) when it did. */
async function interruptible<T>(controller: AbortController, work: () => Promise<T>): Promise<T | 130> {
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    return await work();
  } catch (e) {
    if (controller.signal.aborted) {
      console.error('\narbex: interrupted; nothing was written');
      return 130;
    }
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

async function runImages(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      images: { type: 'string' },
      crops: { type: 'boolean' },
      weights: { type: 'string' },
      border: { type: 'string' },
      out: { type: 'string', short: 'o' },
      html: { type: 'string' },
      'batch-size': { type: 'string' },
      workers: { type: 'string' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 0 || !values.images) {
    console.error(IMAGES_USAGE);
    return 2;
  }
  const border = values.border === undefined ? undefined : Number(values.border);
  if (border !== undefined && !(border >= 0)) throw new Error(`--border must be a number >= 0 (got "${values.border}")`);
  if (border !== undefined && values.crops) throw new Error('--border applies to detection; leave it out with --crops');
  const batchSize = intOption('batch-size', values['batch-size'], 32, 1);
  const workers = intOption('workers', values.workers, 0, 0);
  const settings = readSettings();
  await initBackend(settings.backend);
  const model = await loadFaceModel(values.weights ?? settings.weightsDir, { workers, engine: settings.engine });
  const detector = values.crops ? undefined : await createFaceDetector({ detectEvery: 1 });
  const controller = new AbortController();
  const progress = createProgress('images');
  const report = await interruptible(controller, async () => {
    try {
      const r = await evaluateImages({ dir: values.images!, model, detector, batchSize, ...(border !== undefined ? { border } : {}), signal: controller.signal, onProgress: progress.update });
      progress.finish();
      return r;
    } finally {
      model.dispose();
      detector?.dispose();
    }
  });
  if (report === 130) return 130;
  if (values.out) await writeFileAtomic(values.out, `${JSON.stringify(report, null, 2)}\n`);
  if (values.html) await writeFileAtomic(values.html, imagesReportHtml(report));
  console.log(imagesSummary(report));
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  if (argv.some((a) => a === '--images' || a.startsWith('--images='))) return runImages(argv);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      annotations: { type: 'string' },
      crops: { type: 'string' },
      videos: { type: 'string' },
      weights: { type: 'string' },
      smoothing: { type: 'string' },
      window: { type: 'string' },
      alpha: { type: 'string' },
      missing: { type: 'string' },
      'sweep-smoothing': { type: 'string' },
      out: { type: 'string', short: 'o' },
      html: { type: 'string' },
      predictions: { type: 'string' },
      submission: { type: 'string' },
      'batch-size': { type: 'string' },
      workers: { type: 'string' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 0 || !values.annotations || Boolean(values.crops) === Boolean(values.videos)) {
    console.error(USAGE);
    return 2;
  }
  const settings = readSettings();
  const smoothing = smoothingOption(values.smoothing, values.window, values.alpha);
  const missing = (values.missing ?? 'interpolate') as MissingPolicy;
  if (missing !== 'interpolate' && missing !== 'skip') throw new Error(`--missing must be interpolate or skip (got "${values.missing}")`);
  const sweep = values['sweep-smoothing'] !== undefined ? windowList(values['sweep-smoothing']) : undefined;
  const batchSize = intOption('batch-size', values['batch-size'], 32, 1);
  const workers = intOption('workers', values.workers, 0, 0);

  // Annotation files are checked in full before any model work starts.
  const annotations = await readAnnotationDir(values.annotations);
  await initBackend(settings.backend);
  const model = await loadFaceModel(values.weights ?? settings.weightsDir, { workers, engine: settings.engine });
  const modelClasses = [...model.classes];
  abawIndexOf(modelClasses);
  const controller = new AbortController();
  const progress = createProgress(values.crops ? 'crops' : 'videos');
  const raw = await interruptible(controller, async () => {
    let series;
    if (values.crops) {
      try {
        series = await collectCrops(annotations, values.crops, model, { batchSize, signal: controller.signal, onProgress: progress.update });
      } finally {
        model.dispose();
      }
    } else {
      const engine = await createEngine({ model, settings, batch: { maxBatch: batchSize } });
      try {
        series = await collectVideos(annotations, values.videos!, engine, { signal: controller.signal, onProgress: progress.update });
      } finally {
        await engine.close();
      }
    }
    progress.finish();
    return series;
  });
  if (raw === 130) return 130;

  const { report, rows, predictions } = scoreSeries(annotations, raw, { mode: values.crops ? 'crops' : 'videos', modelClasses, smoothing, missing, sweep });
  if (values.predictions) {
    const file = await openAtomic(values.predictions);
    try {
      await file.write(`${predictionsHeader(modelClasses)}\n`);
      for (const r of rows) await file.write(`${predictionLine(r, modelClasses)}\n`);
      await file.commit();
    } finally {
      await file.abort();
    }
  }
  if (values.out) await writeFileAtomic(values.out, `${JSON.stringify(report, null, 2)}\n`);
  if (values.html) await writeFileAtomic(values.html, reportHtml(report));
  if (values.submission) {
    // A submission needs a label on every frame, so missing frames are always interpolated here.
    const all = missing === 'interpolate' ? predictions : new Map(annotations.map((a) => [a.name, predictSeries(raw.get(a.name)!, { smoothing, missing: 'interpolate' })]));
    const single = /\.(txt|csv)$/i.test(values.submission);
    const sub = buildSubmission(all, { format: single ? 'single' : 'files', toAbaw: abawIndexOf(modelClasses) });
    for (const [name, text] of sub.files) await writeFileAtomic(single ? values.submission : path.join(values.submission, name), text);
    if (sub.fallbackVideos.length) console.error(`arbex: no face in any frame of ${sub.fallbackVideos.join(', ')}: submitted as Neutral`);
  }
  console.log(summary(report));
  return 0;
}
