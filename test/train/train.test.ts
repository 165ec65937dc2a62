import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../../src/backends/index.js';
import { ROOT } from '../../src/env.js';
import { createArbex, loadArbex, predictBatches } from '../../src/model/arbex.js';
import { loadFaceModel } from '../../src/model/face-model.js';
import { createParams } from '../../src/model/nn/params.js';
import {
  evaluate,
  openDataSpec,
  parseDataSpec,
  readTrainState,
  trainArbex,
  validateTrainConfig,
  type TrainConfig,
} from '../../src/model/train/index.js';
import type { Dataset } from '../../src/model/data/index.js';
import type { PosterConfig } from '../../src/model/extractor/index.js';

import { CLASSES, epochLines, quietTraining, syntheticTrainSet, tinyTrainJson } from '../support/train.js';

await initBackend(undefined, { log: false });

const CONFIG_JSON = tinyTrainJson({ head: { hidden: [32], dropout: 0 }, epochs: 2, evalBatchSize: 32, perClass: 16, seed: 2 });
const quiet = quietTraining;

describe('training config', () => {
  test('defaults, lambdas and label smoothing go into the head config', () => {
    const c = validateTrainConfig({ ...CONFIG_JSON, lambdas: { a: 0.1, c: 0 }, labelSmoothing: 0 });
    assert.equal(c.decay, 0.995);
    assert.equal(c.objective, 'arbex');
    assert.equal(c.freeze, 'none');
    assert.equal(c.model.head.loss.lambdaA, 0.1);
    assert.equal(c.model.head.loss.lambdaC, 0);
    assert.equal(c.model.head.loss.lambdaCd, 1);
    assert.equal(c.model.head.loss.labelSmoothing, 0);
    assert.equal((c.model.extractor as PosterConfig).frozen.landmark, false);
    // The saved (resolved) config validates to itself, which resume relies on.
    assert.deepEqual(validateTrainConfig(JSON.parse(JSON.stringify(c))), c);
  });

  test('clear errors', () => {
    const bad: [unknown, RegExp][] = [
      [[], /training config: must be a JSON object/],
      [{ ...CONFIG_JSON, epoch: 3 }, /unknown key "epoch"/],
      [{ ...CONFIG_JSON, model: undefined }, /model must be an ARBEx model config/],
      [{ ...CONFIG_JSON, epochs: 0 }, /epochs must be an integer >= 1 \(got 0\)/],
      [{ ...CONFIG_JSON, batchSize: 1 }, /batchSize must be an integer >= 2/],
      [{ ...CONFIG_JSON, decay: 1.5 }, /decay must be at most 1/],
      [{ ...CONFIG_JSON, objective: 'mse' }, /objective must be one of "arbex", "ce" \(got "mse"\)/],
      [{ ...CONFIG_JSON, freeze: 'all' }, /freeze must be one of "none", "backbone"/],
      [{ ...CONFIG_JSON, sampling: 'uniform' }, /sampling must be one of "balanced", "natural"/],
      [{ ...CONFIG_JSON, lambdas: { b: 1 } }, /lambdas.b is not a loss weight/],
      [{ ...CONFIG_JSON, augment: { zoom: 2 } }, /augment.zoom is not an augmentation setting/],
      [{ ...CONFIG_JSON, augment: { resize: 30 } }, /augment.resize must be at least the model's inputSize 40/],
      [{ ...CONFIG_JSON, model: { ...CONFIG_JSON.model, extractor: 'big' } }, /training config: model: arbex config: extractor "big" is not a preset/],
    ];
    for (const [json, re] of bad) assert.throws(() => validateTrainConfig(json), re);
  });

  test('data specs', () => {
    assert.deepEqual(parseDataSpec('folder:data/x,group=prefix'), { kind: 'folder', path: 'data/x', options: { group: 'prefix' } });
    assert.deepEqual(parseDataSpec('abaw:/d,annotations=A/Train,images=img'), { kind: 'abaw', path: '/d', options: { annotations: 'A/Train', images: 'img' } });
    assert.throws(() => parseDataSpec('data/x'), /expected kind:path with kind one of folder, csv, rafdb, abaw/);
    assert.throws(() => parseDataSpec('csv:'), /the path is empty/);
    assert.throws(() => parseDataSpec('rafdb:/r,split=train'), /"split=train" is not an option of rafdb \(partition=..., noise=..., noiseSeed=...\)/);
  });
});

describe('training runs (tiny preset, synthetic faces)', () => {
  let dir: string;
  let config: TrainConfig;
  let train: Dataset;

  before(async () => {
    ({ dir, train } = await syntheticTrainSet('arbex-train-', 6));
    config = validateTrainConfig(CONFIG_JSON);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('two epochs lower the loss and leave loadable checkpoints', async () => {
    const out = path.join(dir, 'run');
    const val = await openDataSpec(parseDataSpec(`folder:${dir}/data/val`), CLASSES);
    const fresh = createArbex(createParams(config.seed), config.model, { seed: config.seed });
    const beforeLoss = (await evaluate(fresh, train)).primaryLoss;
    fresh.dispose();

    // Without augmentation 32 steps visibly fit the 40 training images.
    const result = await trainArbex({ config: { ...config, augment: false }, train, val, out, ...quiet });
    assert.equal(result.stopped, false);
    assert.deepEqual(result.state, { ...result.state, epoch: 2, stepInEpoch: 0, step: 32 });
    const lines = await epochLines(out);
    assert.deepEqual(lines.map((l) => l.epoch), [1, 2]);
    assert.ok(lines.every((l) => Number.isFinite(l.loss) && l.val));
    assert.ok(lines[1]!.learningRate < lines[0]!.learningRate, 'learning rate decays per epoch');
    assert.ok(lines[1]!.trust === 1 && lines[0]!.trust < 1, 'trust ramps to 1 at the last step');

    const trained = await loadArbex(path.join(out, 'last'));
    const afterLoss = (await evaluate(trained, train)).primaryLoss;
    trained.dispose();
    assert.ok(afterLoss < beforeLoss, `training NLL ${beforeLoss.toFixed(4)} -> ${afterLoss.toFixed(4)}`);

    // best/ is the epoch with the highest validation macro F1 (the first on ties), and holds the
    // weights that scored it: evaluated again from disk, they give the figures it recorded.
    const best = JSON.parse(await readFile(path.join(out, 'best', 'metrics.json'), 'utf8'));
    const f1s = lines.map((l) => l.val!.macroF1);
    assert.equal(best.epoch, f1s.indexOf(Math.max(...f1s)) + 1);
    assert.equal(best.corrected.accuracy, lines[best.epoch - 1]!.val!.accuracy);
    const bestModel = await loadArbex(path.join(out, 'best'));
    const again = await evaluate(bestModel, val);
    assert.equal(again.corrected.accuracy, best.corrected.accuracy);
    assert.ok(Math.abs(again.corrected.macroF1 - best.corrected.macroF1) < 1e-12);

    // The product's loader answers what the model computes for the same crop.
    const crop = new Uint8Array(40 * 40 * 3).map((_, i) => (i * 37) % 256);
    const direct = predictBatches(bestModel, { data: Float32Array.from(crop, (v) => v / 255), shape: [1, 40, 40, 3] });
    bestModel.dispose();
    const face = await loadFaceModel(path.join(out, 'best'));
    const [p] = await face.predict([crop]);
    face.dispose();
    const corrected = Array.from(direct.corrected.data);
    assert.ok(p!.corrected.every((v, i) => Math.abs(v - corrected[i]!) < 1e-6), `${p!.corrected} vs ${corrected}`);
    assert.equal(p!.label, CLASSES[corrected.indexOf(Math.max(...corrected))]);
    const png = await readFile(path.join(out, 'curves.png'));
    assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
  });

  test('a stopped run saves its position and --resume continues from it', async () => {
    const out = path.join(dir, 'resume');
    const controller = new AbortController();
    const first = await trainArbex({
      config,
      train,
      out,
      signal: controller.signal,
      onStep: (s) => s.step === 20 && controller.abort(),
      ...quiet,
    });
    assert.equal(first.stopped, true);
    const saved = await readTrainState(path.join(out, 'last'));
    assert.deepEqual({ ...saved, running: undefined, history: saved.history.length }, { epoch: 1, stepInEpoch: 4, step: 20, best: first.state.best, running: undefined, history: 1 });
    assert.deepEqual((await epochLines(out)).map((l) => l.epoch), [1]);

    const steps: number[] = [];
    const second = await trainArbex({ config, train, out, resume: true, onStep: (s) => steps.push(s.step), ...quiet });
    assert.deepEqual(steps, Array.from({ length: 12 }, (_, i) => 21 + i), 'only the rest of epoch 2 is trained');
    assert.equal(second.state.epoch, 2);
    assert.deepEqual((await epochLines(out)).map((l) => l.epoch), [1, 2]);

    // Extending a finished run: only the number of epochs may change.
    const third = await trainArbex({ config: { ...config, epochs: 3 }, train, out, resume: true, ...quiet });
    assert.deepEqual([third.state.epoch, third.state.step], [3, 48]);
    assert.deepEqual((await epochLines(out)).map((l) => l.epoch), [1, 2, 3]);
    await assert.rejects(trainArbex({ config: { ...config, learningRate: 1 }, train, out, resume: true, ...quiet }), /differs from the one the run started with/);
  });

  test('CE baseline with a frozen backbone trains only what its loss reaches', async () => {
    const ce = validateTrainConfig({ ...CONFIG_JSON, epochs: 1, objective: 'ce', freeze: 'backbone' });
    const out = path.join(dir, 'ce');
    const result = await trainArbex({ config: ce, train, out, ...quiet });
    const [line] = result.epochs;
    assert.ok(Number.isFinite(line!.loss) && line!.lossA === 0 && line!.lossC === 0);
    assert.equal(line!.loss, line!.lossCd);
    // The frozen extractor is exactly the initial one.
    const init = createArbex(createParams(ce.seed), ce.model, { seed: ce.seed });
    const trained = await loadArbex(path.join(out, 'last'));
    for (const [name, v] of init.store.vars) {
      if (!name.startsWith('extractor.')) continue;
      const same = Buffer.compare(Buffer.from((v.dataSync() as Float32Array).buffer), Buffer.from((trained.store.vars.get(name)!.dataSync() as Float32Array).buffer)) === 0;
      assert.ok(same, `${name} changed`);
    }
    init.dispose();
    trained.dispose();
  });

  test('--init starts a new run from another model\'s extractor (frozen here: it stays exactly that)', async () => {
    const source = validateTrainConfig({ ...CONFIG_JSON, epochs: 1, seed: 11 });
    const first = path.join(dir, 'init-source');
    await trainArbex({ config: source, train, out: first, ...quiet });
    const frozen = validateTrainConfig({ ...CONFIG_JSON, epochs: 1, freeze: 'backbone', seed: 12 });
    const out = path.join(dir, 'init-target');
    await trainArbex({ config: frozen, train, out, init: path.join(first, 'last'), ...quiet });
    const a = await loadArbex(path.join(first, 'last'));
    const b = await loadArbex(path.join(out, 'last'));
    let compared = 0;
    for (const [name, v] of a.store.vars) {
      if (!name.startsWith('extractor.')) continue;
      const same = Buffer.compare(Buffer.from((v.dataSync() as Float32Array).buffer), Buffer.from((b.store.vars.get(name)!.dataSync() as Float32Array).buffer)) === 0;
      assert.ok(same, `${name} differs from the --init model`);
      compared++;
    }
    assert.ok(compared > 10);
    a.dispose();
    b.dispose();
  });

  test('CLI: Ctrl-C saves a checkpoint at the end of the step and exits 130', async () => {
    const cfgFile = path.join(dir, 'cfg.json');
    await writeFile(cfgFile, JSON.stringify(CONFIG_JSON));
    const out = path.join(dir, 'cli');
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'arbex.js'), 'train', '--config', cfgFile, '--data', `folder:${dir}/data/train,group=prefix`, '--out', out], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('model: ') && !child.killed) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 130, stderr);
    assert.match(stderr, /stopping after the current step/);
    const state = await readTrainState(path.join(out, 'last'));
    assert.deepEqual([state.epoch, state.stepInEpoch, state.step], [0, 1, 1]);
    assert.deepEqual(JSON.parse(await readFile(path.join(out, 'run.json'), 'utf8')), { data: `folder:${dir}/data/train,group=prefix` });
  });
});
