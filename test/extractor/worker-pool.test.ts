import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/index.js';
import { createWorkerPool, restoreParams, snapshotParams } from '../../src/backends/worker-pool.js';
import { createParams, disposeParams } from '../../src/model/nn/params.js';
import { createExtractor, EXTRACTOR_WORKER_MODULE, extractorConfig, extractorWorkerSpec } from '../../src/model/extractor/index.js';

await initBackend(undefined, { log: false });
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

test('the pool returns the in-process embeddings, in input order', async () => {
  const store = createParams(5);
  const fx = createExtractor(store, extractorConfig('tiny'));
  // Trained-looking BatchNorm statistics, so that the snapshot must carry them.
  tf.tidy(() => void fx.forward(tf.randomUniform([4, 40, 40, 3], 0, 1, 'float32', 1) as tf.Tensor4D, { training: true }));
  const n = 5;
  const x = tf.randomUniform([n, 40, 40, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
  const expected = tf.tidy(() => fx.forward(x));
  const pool = await createWorkerPool({ module: EXTRACTOR_WORKER_MODULE, spec: extractorWorkerSpec(fx, store), size: 2 });
  try {
    const out = await pool.predict({ data: x.dataSync() as Float32Array, shape: x.shape });
    assert.deepEqual(out.embedding.shape, [n, fx.config.embedDim]);
    const want = expected.dataSync();
    const err = Math.max(...out.embedding.data.map((v, i) => Math.abs(v - want[i])));
    assert.ok(err <= 1e-5, `max abs diff ${err}`);
    // Concurrent calls are answered independently and in order.
    const [a, b] = await Promise.all([1, 3].map((k) => pool.predict({ data: x.slice([0, 0, 0, 0], [k, -1, -1, -1]).dataSync() as Float32Array, shape: [k, 40, 40, 3] })));
    assert.deepEqual([...a.embedding.data], [...out.embedding.data.slice(0, fx.config.embedDim)]);
    assert.deepEqual([...b.embedding.data], [...out.embedding.data.slice(0, 3 * fx.config.embedDim)]);
  } finally {
    await pool.close();
    tf.dispose([x, expected]);
    disposeParams(store);
  }
  await assert.rejects(pool.predict({ data: new Float32Array(40 * 40 * 3), shape: [1, 40, 40, 3] }), /worker pool closed/);
});

test('errors come back as rejected promises and the pool stays usable', async () => {
  await assert.rejects(createWorkerPool({ module: fixture('failing-model.ts'), spec: { failAt: 'create' }, size: 2 }), /model construction failed on purpose/);
  await assert.rejects(createWorkerPool({ module: fixture('no-such-model.ts'), spec: {}, size: 1 }), /no-such-model/);
  await assert.rejects(createWorkerPool({ module: EXTRACTOR_WORKER_MODULE, spec: {}, size: 0 }), /positive integer/);

  const pool = await createWorkerPool({ module: fixture('failing-model.ts'), spec: { failAt: 'predict' }, size: 2 });
  try {
    await assert.rejects(pool.predict({ data: new Float32Array(6), shape: [3, 2] }), /refusing a batch of 2/);
    await assert.rejects(pool.predict({ data: new Float32Array(5), shape: [3, 2] }), /does not match shape/);
    const ok = await pool.predict({ data: new Float32Array([1, 2, 3, 4]), shape: [2, 2] });
    assert.deepEqual([...ok.doubled.data], [2, 4, 6, 8]);
    assert.deepEqual(ok.doubled.shape, [2, 2]);
  } finally {
    await pool.close();
  }
});

test('a pool that is never closed does not keep the process alive', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', fixture('pool-left-open.ts')], { timeout: 60_000 });
  assert.match(stdout, /done: "refusing a batch of 2"/);
});

test('snapshots restore exactly and refuse a different layout', () => {
  const a = createParams(1);
  const b = createParams(2);
  createExtractor(a, extractorConfig('tiny'));
  createExtractor(b, extractorConfig('tiny'));
  restoreParams(b, snapshotParams(a));
  for (const [name, v] of a.vars) assert.deepEqual(b.vars.get(name)!.dataSync(), v.dataSync(), name);
  const c = createParams(3);
  createExtractor(c, extractorConfig('tiny', { embedDim: 32 }));
  assert.throws(() => restoreParams(c, snapshotParams(a)), /does not match the model/);
  [a, b, c].forEach(disposeParams);
});
