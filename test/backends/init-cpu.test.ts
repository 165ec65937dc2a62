/** Forcing the cpu backend (ARBEX_BACKEND=cpu) skips the faster ones without complaint. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/index.js';

test('a forced cpu backend is used as asked', async () => {
  const lines: string[] = [];
  const info = await initBackend('cpu', { log: (l) => lines.push(l) });
  assert.deepEqual(info, { name: 'cpu', module: '@tensorflow/tfjs', features: [], skipped: [] });
  assert.equal(tf.getBackend(), 'cpu');
  assert.deepEqual(lines, ['arbex: backend cpu from @tensorflow/tfjs']);
});
