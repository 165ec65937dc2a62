/**
 * Backend choice: best available first, one report line, one choice per process, clear errors.
 * tfjs-node(-gpu) cannot be installed on these machines, so here the best backend is wasm.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/index.js';

const installed = (name: string): boolean => {
  try {
    createRequire(import.meta.url).resolve(name);
    return true;
  } catch {
    return false;
  }
};
const tfjsNode = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');

test('forcing a backend that cannot start is a clear error, and leaves the choice open', { skip: tfjsNode && 'tfjs-node is installed here' }, async () => {
  const lines: string[] = [];
  await assert.rejects(
    initBackend('tensorflow', { log: (l) => lines.push(l) }),
    /tensor backend "tensorflow" is not available \(tfjs-node-gpu: not installed; tfjs-node: not installed\)/,
  );
  assert.deepEqual(lines, []);
});

test('the best available backend is chosen and reported in one line', { skip: tfjsNode && 'tfjs-node is installed here' }, async () => {
  const lines: string[] = [];
  const info = await initBackend(undefined, { log: (l) => lines.push(l) });
  assert.equal(info.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.deepEqual(info.skipped, ['tfjs-node-gpu: not installed', 'tfjs-node: not installed']);
  assert.ok(info.features.includes('simd'), 'wasm runs with SIMD');
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^arbex: backend wasm \[simd\] from @tensorflow\/tfjs-backend-wasm \(skipped tfjs-node-gpu: not installed; tfjs-node: not installed\)$/);
});

test('later calls return the same choice without reporting again', async () => {
  const lines: string[] = [];
  const first = await initBackend(undefined, { log: false });
  assert.equal(await initBackend(undefined, { log: (l) => lines.push(l) }), first);
  assert.equal(await initBackend(first.name, { log: (l) => lines.push(l) }), first);
  assert.deepEqual(lines, []);
});

test('asking for another backend after the choice is an error', async () => {
  const { name } = await initBackend(undefined, { log: false });
  const other = name === 'cpu' ? 'wasm' : 'cpu';
  await assert.rejects(initBackend(other, { log: false }), new RegExp(`already "${name}"; it cannot be switched to "${other}"`));
  assert.equal(tf.getBackend(), name);
});
