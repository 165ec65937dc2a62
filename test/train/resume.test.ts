/**
 * Exact resume: a run stopped (in process, or by Ctrl-C in another process) and resumed ends
 * with the weights, Adam state and history of the same run never stopped; checkpoints are
 * written atomically.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/index.js';
import { ROOT } from '../../src/env.js';
import { loadArbex } from '../../src/model/arbex.js';
import type { Dataset } from '../../src/model/data/index.js';
import {
  readCheckpoint,
  trainArbex,
  validateTrainConfig,
  writeCheckpoint,
  type Checkpoint,
  type EpochRecord,
  type TrainConfig,
} from '../../src/model/train/index.js';

import { epochLines, quietTraining, syntheticTrainSet, tinyTrainJson } from '../support/train.js';

await initBackend(undefined, { log: false });

// 16 images an epoch in batches of 8: 2 steps an epoch, 6 in the run. Dropout, stochastic depth
// (tiny's fusion and ViT) and every augmentation are on, so every generator is exercised.
const CONFIG_JSON = tinyTrainJson({ head: { hidden: [16], dropout: 0.3 }, epochs: 3, evalBatchSize: 16, perClass: 2, seed: 5 });
const quiet = quietTraining;

/** Largest |a - b| over every variable of two model directories (and the names must agree). */
async function maxWeightDiff(a: string, b: string): Promise<number> {
  const [x, y] = await Promise.all([loadArbex(a), loadArbex(b)]);
  try {
    assert.deepEqual([...x.store.vars.keys()], [...y.store.vars.keys()]);
    let worst = 0;
    for (const [name, v] of x.store.vars) {
      const p = v.dataSync();
      const q = y.store.vars.get(name)!.dataSync();
      for (let i = 0; i < p.length; i++) worst = Math.max(worst, Math.abs(p[i]! - q[i]!));
    }
    return worst;
  } finally {
    x.dispose();
    y.dispose();
  }
}

function maxMomentDiff(a: Checkpoint, b: Checkpoint): number {
  assert.ok(a.optimizer && b.optimizer);
  assert.equal(a.optimizer.step, b.optimizer.step);
  assert.deepEqual([...a.optimizer.moments.keys()].sort(), [...b.optimizer.moments.keys()].sort());
  let worst = 0;
  for (const [name, t] of a.optimizer.moments) {
    const p = t.dataSync();
    const q = b.optimizer.moments.get(name)!.dataSync();
    for (let i = 0; i < p.length; i++) worst = Math.max(worst, Math.abs(p[i]! - q[i]!));
  }
  return worst;
}

function disposeCheckpoint(c: Checkpoint): void {
  c.model.dispose();
  tf.dispose([...(c.optimizer?.moments.values() ?? [])]);
}

/** Epoch records without the wall-clock seconds. */
const timeless = (records: EpochRecord[]) => records.map(({ seconds: _, ...r }) => r);

describe('exact resume (tiny preset, every generator on)', () => {
  let dir: string;
  let config: TrainConfig;
  let train: Dataset;
  const straight = () => path.join(dir, 'straight');

  before(async () => {
    ({ dir, train } = await syntheticTrainSet('arbex-resume-', 2));
    config = validateTrainConfig(CONFIG_JSON);
    const tensors = tf.memory().numTensors;
    await trainArbex({ config, train, out: straight(), ...quiet });
    assert.equal(tf.memory().numTensors, tensors, 'a run leaves no tensor behind');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('1 epoch + stop + resume, stop inside epoch 3 + resume: the same weights, Adam state and history as 3 epochs in one go', async () => {
    const out = path.join(dir, 'stopped');
    const runUntil = async (step: number | undefined, resume: boolean) => {
      const controller = new AbortController();
      const steps: number[] = [];
      const result = await trainArbex({
        config,
        train,
        out,
        resume,
        signal: controller.signal,
        onStep: (s) => {
          steps.push(s.step);
          if (s.step === step) controller.abort();
        },
        ...quiet,
      });
      return { result, steps };
    };
    // Step 2 is the last step of epoch 1: stopped before its validation and record.
    const first = await runUntil(2, false);
    assert.equal(first.result.stopped, true);
    const second = await runUntil(5, true);
    assert.deepEqual(second.steps, [3, 4, 5]);
    assert.deepEqual([second.result.state.epoch, second.result.state.stepInEpoch], [2, 1]);
    const third = await runUntil(undefined, true);
    assert.deepEqual(third.steps, [6]);
    assert.equal(third.result.stopped, false);

    const diff = await maxWeightDiff(path.join(straight(), 'last'), path.join(out, 'last'));
    assert.ok(diff <= 1e-6, `weights differ by ${diff}`);
    const [a, b] = await Promise.all([readCheckpoint(path.join(straight(), 'last')), readCheckpoint(path.join(out, 'last'))]);
    try {
      assert.equal(a.optimizer!.step, 6);
      const moments = maxMomentDiff(a, b);
      assert.ok(moments <= 1e-6, `Adam moments differ by ${moments}`);
      assert.deepEqual({ ...b.state, history: timeless(b.state.history) }, { ...a.state, history: timeless(a.state.history) });
    } finally {
      disposeCheckpoint(a);
      disposeCheckpoint(b);
    }
    assert.deepEqual(timeless(await epochLines(out)), timeless(await epochLines(straight())));
  });

  test('a crash while writing a checkpoint leaves the previous one', async () => {
    const out = path.join(dir, 'crash');
    const controller = new AbortController();
    await trainArbex({ config, train, out, signal: controller.signal, onStep: (s) => s.step === 3 && controller.abort(), ...quiet });
    const last = path.join(out, 'last');
    const bytes = await readFile(path.join(last, 'weights.bin'));
    const good = await readCheckpoint(last);
    try {
      // The write dies after weights.bin, while serialising config.json.
      const model = { ...good.model, config: { ...good.model.config, toJSON: () => { throw new Error('simulated crash'); } } };
      await assert.rejects(writeCheckpoint(last, { model, state: { ...good.state, step: 99 } }), /simulated crash/);
    } finally {
      disposeCheckpoint(good);
    }
    assert.ok(await stat(`${last}.partial`), 'the broken write stayed in last.partial/');
    assert.deepEqual(await readFile(path.join(last, 'weights.bin')), bytes);
    const intact = await readCheckpoint(last);
    disposeCheckpoint(intact);
    assert.equal(intact.state.step, 3);

    // A crash between the two renames leaves only last.previous/: it is taken back.
    await rename(last, `${last}.previous`);
    const back = await readCheckpoint(last);
    disposeCheckpoint(back);
    assert.equal(back.state.step, 3);

    // And the run still finishes as if nothing had happened.
    await trainArbex({ config, train, out, resume: true, ...quiet });
    const diff = await maxWeightDiff(path.join(straight(), 'last'), last);
    assert.ok(diff <= 1e-6, `weights differ by ${diff}`);
  });

  test('a checkpoint written before exact resume (no optimizer, no history) still resumes, with a warning', async () => {
    const out = path.join(dir, 'legacy');
    const controller = new AbortController();
    await trainArbex({ config, train, out, signal: controller.signal, onStep: (s) => s.step === 3 && controller.abort(), ...quiet });
    const last = path.join(out, 'last');
    const { epoch, stepInEpoch, step, best } = JSON.parse(await readFile(path.join(last, 'state.json'), 'utf8'));
    await writeFile(path.join(last, 'state.json'), JSON.stringify({ epoch, stepInEpoch, step, best }));
    await rm(path.join(last, 'optimizer'), { recursive: true });
    const lines: string[] = [];
    const result = await trainArbex({ config, train, out, resume: true, ...quiet, log: (l) => lines.push(l) });
    assert.ok(lines.some((l) => l.includes('holds no optimizer state (an older checkpoint): Adam restarts from zero moments')), lines.join('\n'));
    assert.deepEqual(result.state.history.map((r) => r.epoch), [1, 2, 3]);
    assert.deepEqual((await epochLines(out)).map((l) => l.epoch), [1, 2, 3]);
  });

  test('CLI: Ctrl-C in one process, --resume in another, equals the run never stopped', async () => {
    const cfgFile = path.join(dir, 'cfg.json');
    await writeFile(cfgFile, JSON.stringify(CONFIG_JSON));
    const out = path.join(dir, 'cli');
    const cli = (args: string[], onLine?: (text: string, kill: () => void) => void) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'arbex.js'), 'train', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        onLine?.(stderr, () => child.killed || child.kill('SIGINT'));
      });
      return new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
    };
    // Ctrl-C once epoch 1 is reported: the run stops somewhere in epoch 2 or 3.
    const first = await cli(['--config', cfgFile, '--data', `folder:${dir}/data/train,group=prefix`, '--out', out, '--no-cache'], (text, kill) => {
      if (text.includes('epoch 1/3')) kill();
    });
    assert.equal(first.code, 130, first.stderr);
    const second = await cli(['--resume', '--out', out]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /resume: from epoch \d( step \d)? \(global step \d\), Adam at step \d/);
    const diff = await maxWeightDiff(path.join(straight(), 'last'), path.join(out, 'last'));
    assert.ok(diff <= 1e-6, `weights differ by ${diff}`);
    assert.deepEqual(timeless(await epochLines(out)), timeless(await epochLines(straight())));
  });
});
