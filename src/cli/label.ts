/** `arbex label`: frame-by-frame labels of a recorded video (or every video in a folder) to CSV / JSONL. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../backends/index.js';
import { readSettings } from '../env.js';
import { createProgress, formatOf, labelToFile, videosIn, type LabelFormat } from '../eval/index.js';
import { intOption, smoothingOption } from '../eval/options.js';
import { loadFaceModel } from '../model/face-model.js';
import { createEngine } from '../pipeline/engine.js';
import { SMOOTHING } from '../pipeline/smooth/index.js';

const USAGE = `usage: arbex label <video|folder> [options]

Writes one row per frame and face: frame, time_ms, track, box, label, confidence, the corrected
distribution (p_<class>), the primary one (primary_<class>) and the smoothed label and
distribution (s_<class>). A frame without a face gets one row with an empty track.

options:
  --out FILE|DIR        output file (.csv or .jsonl); for a folder, the output folder
                        (default: beside each video, <name>.labels.<csv|jsonl>)
  --format csv|jsonl    format for folders and default names (default: from --out, else csv)
  --weights DIR         model directory (default: ARBEX_WEIGHTS or weights/fer)
  --batch-size N        faces per model call (default 16); results do not depend on it
  --workers N           model worker threads (default 0: in this thread)
  --smoothing KIND      none | ema | trailing | centred (default none)
  --window N            trailing length / centred half-width in frames (default ${SMOOTHING.trailingWindow} / ${SMOOTHING.centredWindow}, at most ${SMOOTHING.maxWindow})
  --alpha A             EMA weight of the newest frame, in (0, 1] (default ${SMOOTHING.alpha})
  --detect-every N      run the face detector every N frames, tracking in between (default 1)`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      out: { type: 'string', short: 'o' },
      format: { type: 'string' },
      weights: { type: 'string' },
      'batch-size': { type: 'string' },
      workers: { type: 'string' },
      smoothing: { type: 'string' },
      window: { type: 'string' },
      alpha: { type: 'string' },
      'detect-every': { type: 'string' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const settings = readSettings();
  const smoothing = smoothingOption(values.smoothing, values.window, values.alpha);
  const batchSize = intOption('batch-size', values['batch-size'], 16, 1);
  const workers = intOption('workers', values.workers, 0, 0);
  const detectEvery = intOption('detect-every', values['detect-every'], 1, 1);
  if (values.format !== undefined && values.format !== 'csv' && values.format !== 'jsonl') throw new Error(`--format must be csv or jsonl (got "${values.format}")`);
  const { folder, videos } = await videosIn(positionals[0]!);
  if (folder && values.out && /\.(csv|jsonl|ndjson)$/i.test(values.out)) throw new Error(`--out must be a folder when labelling a folder (got "${values.out}")`);
  const format: LabelFormat = (values.format as LabelFormat | undefined) ?? (values.out && !folder ? formatOf(values.out) : 'csv');
  const outFor = (video: string) => {
    if (values.out && !folder) return values.out;
    const name = `${path.basename(video, path.extname(video))}.labels.${format}`;
    return path.join(values.out ?? path.dirname(video), name);
  };

  await initBackend(settings.backend);
  const model = await loadFaceModel(values.weights ?? settings.weightsDir, { workers, engine: settings.engine });
  const engine = await createEngine({ model, settings, batch: { maxBatch: batchSize } });
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    for (const video of videos) {
      const progress = createProgress(path.basename(video));
      const result = await labelToFile(engine, video, outFor(video), { format, smoothing, detectEvery, signal: controller.signal, onProgress: progress.update });
      progress.finish();
      console.error(`arbex: ${video}: ${result.frames} frames (${result.framesWithFaces} with faces) → ${result.file}`);
    }
    return 0;
  } catch (e) {
    if (controller.signal.aborted) {
      console.error('\narbex: interrupted; no partial output was kept');
      return 130;
    }
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await engine.close();
  }
}
