import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/index.js';
import { batchNorm, linear } from '../../src/model/nn/layers.js';
import { createParams, type ParamStore } from '../../src/model/nn/params.js';
import { loadWeights, readModelConfig, saveModel, MANIFEST_FILE, WEIGHTS_FILE } from '../../src/model/weights/index.js';

await initBackend();

function build(seed: number, hidden = 8): ParamStore {
  const store = createParams(seed);
  linear(store, 'fc1', 4, hidden);
  batchNorm(store, 'bn1', hidden);
  linear(store, 'fc2', hidden, 3);
  return store;
}

function snapshot(store: ParamStore): Map<string, Float32Array> {
  return new Map([...store.vars].map(([n, v]) => [n, v.dataSync().slice() as Float32Array]));
}

async function savedDir(): Promise<{ dir: string; source: ParamStore }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'arbex-weights-'));
  const source = build(1);
  // Non-trivial moving statistics too, so they are known to be saved.
  source.vars.get('bn1.movingMean')!.assign(tf.linspace(-1, 1, 8));
  await saveModel(dir, { config: { kind: 'test', hidden: 8 }, store: source });
  return { dir, source };
}

test('save/load round trip is bit-exact, config included', async () => {
  const { dir, source } = await savedDir();
  const target = build(2);
  await loadWeights(dir, target);
  const a = snapshot(source);
  const b = snapshot(target);
  for (const [name, values] of a) {
    assert.deepEqual(Buffer.from(b.get(name)!.buffer), Buffer.from(values.buffer), name);
  }
  assert.deepEqual(await readModelConfig(dir), { kind: 'test', hidden: 8 });
  await rm(dir, { recursive: true });
});

async function assertRejectsUnchanged(dir: string, pattern: RegExp, store = build(3)): Promise<void> {
  const before = snapshot(store);
  await assert.rejects(loadWeights(dir, store), pattern);
  assert.deepEqual(snapshot(store), before, 'nothing may be half-loaded');
}

test('a corrupt weights file is refused, naming the file', async () => {
  const { dir } = await savedDir();
  const bin = await readFile(path.join(dir, WEIGHTS_FILE));
  bin[bin.length - 7] ^= 0x40;
  await writeFile(path.join(dir, WEIGHTS_FILE), bin);
  await assertRejectsUnchanged(dir, /weights\.bin: corrupt: SHA-256/);
  await rm(dir, { recursive: true });
});

test('a truncated weights file is refused with its size', async () => {
  const { dir } = await savedDir();
  const bin = await readFile(path.join(dir, WEIGHTS_FILE));
  await writeFile(path.join(dir, WEIGHTS_FILE), bin.subarray(0, bin.length - 10));
  await assertRejectsUnchanged(dir, /weights\.bin: truncated or wrong file: \d+ bytes, manifest says \d+/);
  await rm(dir, { recursive: true });
});

test('a manifest that is not JSON, or not ours, is refused naming model.json', async () => {
  const { dir } = await savedDir();
  await writeFile(path.join(dir, MANIFEST_FILE), '{"format": "arbex-weights", ');
  await assertRejectsUnchanged(dir, /model\.json: not valid JSON/);
  await writeFile(path.join(dir, MANIFEST_FILE), '{"format": "graph-model"}');
  await assertRejectsUnchanged(dir, /model\.json: not an arbex weights manifest/);
  await rm(dir, { recursive: true });
});

test('weights of another model layout are refused; the target keeps its values', async () => {
  const { dir } = await savedDir();
  await assertRejectsUnchanged(dir, /model\.json: "fc1\.weight" has shape \[4,8\] but the model expects \[4,16\]/, build(4, 16));
  const other = createParams(5);
  linear(other, 'fc1', 4, 8);
  linear(other, 'head', 8, 3);
  await assertRejectsUnchanged(dir, /does not match the model: missing head\.weight, head\.bias; unexpected bn1/, other);
  await rm(dir, { recursive: true });
});

test('a missing directory names the file that could not be read', async () => {
  await assertRejectsUnchanged('/nonexistent/arbex-model', /\/nonexistent\/arbex-model\/model\.json: cannot read \(ENOENT\)/);
});

test('loading leaks no tensors', async () => {
  const { dir } = await savedDir();
  const target = build(6);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) await loadWeights(dir, target);
  assert.equal(tf.memory().numTensors, before);
  await rm(dir, { recursive: true });
});

test('a prefix loads only that part of a model, from a directory holding more', async () => {
  const { dir, source } = await savedDir();
  const target = build(7);
  const bn = snapshot(target).get('bn1.gamma')!;
  await loadWeights(dir, target, { prefix: 'fc1.' });
  assert.deepEqual(snapshot(target).get('fc1.weight'), snapshot(source).get('fc1.weight'));
  assert.notDeepEqual(snapshot(target).get('fc2.weight'), snapshot(source).get('fc2.weight'));
  assert.deepEqual(snapshot(target).get('bn1.gamma'), bn);
  await assert.rejects(loadWeights(dir, build(8), { prefix: 'head.' }), /has no variables under "head\."/);
  await rm(dir, { recursive: true });
});
