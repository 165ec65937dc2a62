/** `arbex train`: trains an ARBEx model from a JSON config on any supported data set. */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../backends/index.js';
import { readSettings, ROOT } from '../env.js';
import { loadArbex } from '../model/arbex.js';
import { createProgress, evaluate, openDataSpec, openFeatureCache, parseDataSpec, trainArbex, validateTrainConfig } from '../model/train/index.js';

/** Default root of the feature cache: git-ignored, inside the checkout. */
const DEFAULT_CACHE = path.join(ROOT, '.cache', 'features');

const USAGE = `usage: arbex train --config FILE --data KIND:PATH [--val KIND:PATH] [--test KIND:PATH] [--init DIR] --out DIR [--cache DIR | --no-cache]
       arbex train --resume --out DIR [--epochs N] [--cache DIR | --no-cache]

Trains an ARBEx model (extractor + head). KIND:PATH is one of
  folder:DIR[,group=prefix|folder|file]     <DIR>/<class>/<image>; group=prefix groups <id>_<n>.png by <id>
  csv:FILE                                  rows path,label[,group]
  rafdb:ROOT[,partition=train|test|all]
  abaw:ROOT[,annotations=DIR][,images=DIR]
  fer2013csv:FILE[,usage=Training|PublicTest|PrivateTest]   Kaggle fer2013.csv; join splits with +

Writes <out>/last/ every epoch, <out>/best/ (best validation macro F1), <out>/metrics.jsonl and
<out>/curves.png. With --test, the best checkpoint is evaluated on that set at the end and the
result written to <out>/test.json.

Resume: <out>/last/ holds the weights, Adam's moments and step, the position in the run and the
history, written atomically. Ctrl-C saves it at the end of the current step (exit status 130);
'arbex train --resume --out DIR', in this or any later session, continues exactly: the finished
run equals one that was never stopped. After a crash it continues from the last epoch saved.

Feature cache: with "freeze": "backbone" in the config, each image's embedding and its mirror's
are computed once and stored under --cache DIR (default: .cache/features in the arbex checkout),
keyed by the extractor's weights, the preprocessing and the data files; a change to any of them
is a miss and a rebuild. Validation, --test and the anchor initialisation always read it; the
training batches read it when the augmentation is at most a flip ("augment": false, or resize
equal to the inputSize with rotate, brightness, contrast, saturation and noise 0), and otherwise
run the extractor every step, saying why in the log.

options:
  --config FILE   training config (JSON; see docs/TRAINING.md)
  --data SPEC     training data
  --val SPEC      validation data (chooses best/)
  --test SPEC     test data, evaluated once with best/ at the end
  --out DIR       run folder
  --init DIR      start from the extractor weights of the model in DIR (same extractor config)
  --resume        continue the run in --out (its saved config and data)
  --epochs N      change the number of epochs (e.g. to extend a resumed run)
  --cache DIR     feature cache folder for a frozen backbone (default .cache/features in the checkout)
  --no-cache      run the frozen extractor on every pass instead
  --cache-workers N  worker threads that build a missing cache (default: one per CPU core)

examples:
  arbex train --config configs/demo.json --data folder:data/synth-demo/train,group=prefix \\
    --val folder:data/synth-demo/val --out runs/demo
  arbex train --resume --out runs/demo                 continue after Ctrl-C, a crash or in a new session
  arbex train --resume --out runs/demo --epochs 60     extend a finished run
  arbex train --config configs/head-cached.json --init weights/demo \\
    --data folder:data/synth-demo/train,group=prefix --val folder:data/synth-demo/val --out runs/head
                                                       head only, on cached features of weights/demo's extractor`;

interface RunFile {
  data: string;
  val?: string;
  test?: string;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      data: { type: 'string' },
      val: { type: 'string' },
      test: { type: 'string' },
      out: { type: 'string' },
      resume: { type: 'boolean' },
      init: { type: 'string' },
      epochs: { type: 'string' },
      cache: { type: 'string' },
      'no-cache': { type: 'boolean' },
      'cache-workers': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const out = values.out;
  if (!out) throw new Error(`--out is required\n\n${USAGE}`);
  if (values.cache !== undefined && values['no-cache']) throw new Error('--cache and --no-cache exclude each other');
  const cache = values['no-cache'] ? undefined : path.resolve(values.cache ?? DEFAULT_CACHE);
  const cacheWorkers = Number(values['cache-workers'] ?? os.availableParallelism());
  if (!Number.isInteger(cacheWorkers) || cacheWorkers < 0) throw new Error(`--cache-workers must be an integer >= 0 (got "${values['cache-workers']}")`);
  const runFile = path.join(out, 'run.json');
  let configJson: unknown;
  let specs: RunFile;
  if (values.resume) {
    if (values.config || values.data || values.val || values.test) throw new Error('--resume takes the config and data of the run in --out; leave out --config, --data, --val and --test');
    configJson = JSON.parse(await readFile(path.join(out, 'train-config.json'), 'utf8').catch(() => 'null'));
    specs = JSON.parse(await readFile(runFile, 'utf8').catch(() => 'null'));
    if (!configJson || !specs) throw new Error(`${out}: no run to resume (train-config.json or run.json missing)`);
  } else {
    if (!values.config || !values.data) throw new Error(`--config and --data are required\n\n${USAGE}`);
    const text = await readFile(values.config, 'utf8');
    try {
      configJson = JSON.parse(text);
    } catch (e) {
      throw new Error(`${values.config}: not valid JSON (${(e as Error).message})`);
    }
    specs = { data: values.data, ...(values.val ? { val: values.val } : {}), ...(values.test ? { test: values.test } : {}) };
  }
  if (values.epochs !== undefined) (configJson as Record<string, unknown>).epochs = Number(values.epochs);
  const config = validateTrainConfig(configJson);
  const classes = config.model.classes;
  // Parse every spec before any slow work, so a typo fails at once.
  const [trainSpec, valSpec, testSpec] = [specs.data, specs.val, specs.test].map((s) => (s ? parseDataSpec(s) : undefined));

  await initBackend(readSettings().backend);
  const train = await openDataSpec(trainSpec!, classes);
  const val = valSpec && (await openDataSpec(valSpec, classes));
  if (!values.resume) {
    await mkdir(out, { recursive: true });
    await writeFile(runFile, JSON.stringify(specs, null, 2) + '\n');
  }

  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\narbex train: stopping after the current step (Ctrl-C again to quit at once)\n');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    const result = await trainArbex({
      config,
      train,
      val,
      out,
      resume: values.resume === true,
      ...(values.init ? { init: values.init } : {}),
      ...(cache ? { cache, cacheWorkers } : {}),
      signal: controller.signal,
      progress: createProgress({ tty: process.stderr.isTTY === true }),
    });
    if (result.stopped) return 130;
    const best = result.state.best;
    if (best?.macroF1 != null) console.error(`best: epoch ${best.epoch}, validation macro F1 ${best.macroF1.toFixed(4)}, accuracy ${best.accuracy!.toFixed(4)} -> ${path.join(out, 'best')}`);
  } finally {
    process.off('SIGINT', onSigint);
  }

  if (testSpec) {
    const model = await loadArbex(path.join(out, 'best'));
    try {
      const test = await openDataSpec(testSpec, classes);
      const features = cache && config.freeze === 'backbone' ? await openFeatureCache({ model, dataset: test, dir: cache, batchSize: config.evalBatchSize, name: 'test', log: (line) => console.error(line), workers: cacheWorkers }) : undefined;
      const e = await evaluate(model, test, { batchSize: config.evalBatchSize, ...(features ? { features } : {}) });
      // A CE run trains and selects on the primary distribution (the corrected one is untrained), so that is its figure.
      const reported = config.objective === 'ce' ? 'primary' : 'corrected';
      const summary = {
        data: specs.test,
        reported,
        count: e.corrected.count,
        accuracy: e[reported].accuracy,
        macroF1: e[reported].macroF1,
        primaryAccuracy: e.primary.accuracy,
        primaryMacroF1: e.primary.macroF1,
        corrected: e.corrected,
        primary: e.primary,
      };
      await writeFile(path.join(out, 'test.json'), JSON.stringify(summary, null, 2) + '\n');
      console.log(`test (${summary.count} images, ${reported} distribution): accuracy ${summary.accuracy.toFixed(4)}, macro F1 ${summary.macroF1.toFixed(4)} (primary ${summary.primaryAccuracy.toFixed(4)} / ${summary.primaryMacroF1.toFixed(4)})`);
    } finally {
      model.dispose();
    }
  }
  return 0;
}
