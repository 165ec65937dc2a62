/**
 * Faces per second of the extractor with the ARBEx head on top (crop in, corrected distribution
 * out), in-process and in a worker pool, for the `lite` and `full` presets at batch 1, 4, 16, 64.
 * Random weights: speed does not depend on their values. One JSON line per measurement:
 *   {bench:'extractor', preset, head, batch, facesPerSec, facesPerCpuSec, backend, workers, macsPerFace, params, machine}
 * `workers: 0` is the calling thread; the pool has one wasm backend per worker thread.
 * Environment: BENCH_PRESETS (default "lite,full"), BENCH_WORKERS (default "0,2"),
 * BENCH_BATCHES (default "1,4,16,64").
 */
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backends/index.js';
import { createWorkerPool, restoreParams, snapshotParams, type Batch, type WorkerModel } from '../src/backends/worker-pool.js';
import { createParams, disposeParams } from '../src/model/nn/params.js';
import { INFER } from '../src/model/nn/layers.js';
import { createExtractor, extractorConfig, type ExtractorConfig, type PresetName } from '../src/model/extractor/index.js';
import { createHead, validateHeadConfig } from '../src/model/head/index.js';
import { describeMachine } from './machine.js';

const CLASSES = ['Neutral', 'Anger', 'Disgust', 'Fear', 'Happiness', 'Sadness', 'Surprise', 'Other'];

interface Spec {
  config: ExtractorConfig;
  weights?: ReturnType<typeof snapshotParams>;
}

/** Extractor + head: [B, S, S, 3] in [0, 1] → corrected distributions [B, L]. */
function buildModel(spec: Spec) {
  const store = createParams(1);
  const fx = createExtractor(store, spec.config);
  const head = createHead(store, validateHeadConfig({ classes: CLASSES, embedDim: spec.config.embedDim }));
  if (spec.weights) restoreParams(store, spec.weights);
  const run = (x: tf.Tensor4D | (() => tf.Tensor4D)) => tf.tidy(() => head.forward(fx.forward(typeof x === 'function' ? x() : x), INFER).corrected);
  return { store, fx, run };
}

/** Worker-pool entry: the same model inside a worker. */
export function createWorkerModel(spec: Spec): WorkerModel {
  const { store, run } = buildModel(spec);
  return {
    predict(input: Batch) {
      // The input tensor is made inside run's tidy, so it is freed with the intermediates.
      const out = run(() => tf.tensor4d(input.data, input.shape as [number, number, number, number]));
      const data = out.dataSync() as Float32Array;
      out.dispose();
      return { corrected: { data, shape: out.shape } };
    },
    dispose: () => disposeParams(store),
  };
}

/**
 * Median faces/s over `iters` timed calls after one warm-up call, by wall clock and per second
 * of this process's CPU time (all its threads). On a machine shared with other work the second
 * is the steadier figure: faces per CPU-second × free cores bounds what the pool can reach.
 */
async function measure(batch: number, iters: number, call: () => Promise<void>): Promise<{ facesPerSec: number; facesPerCpuSec: number }> {
  await call();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < iters; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await call();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rate = (ms: number) => Math.round((batch / (ms / 1000)) * 10) / 10;
  return { facesPerSec: rate(median(wall)), facesPerCpuSec: rate(median(cpu)) };
}

export async function run(): Promise<void> {
  const backend = await initBackend(undefined, { log: false });
  const presets = (process.env.BENCH_PRESETS ?? 'lite,full').split(',') as PresetName[];
  const workerCounts = (process.env.BENCH_WORKERS ?? '0,2').split(',').map(Number);
  const batches = (process.env.BENCH_BATCHES ?? '1,4,16,64').split(',').map(Number);
  for (const preset of presets) {
    const config = extractorConfig(preset);
    const { store, fx, run: local } = buildModel({ config });
    const side = config.inputSize;
    const emit = (batch: number, workers: number, r: { facesPerSec: number; facesPerCpuSec: number }) =>
      process.stdout.write(
        JSON.stringify({ bench: 'extractor', preset, head: true, batch, ...r, backend: backend.name, workers, macsPerFace: fx.macsPerFace, params: fx.paramCount, machine: describeMachine(backend) }) + '\n',
      );
    // The full model costs ~8.6 G MACs a face: one timed call per batch size. Every batch size
    // still gets its own warm-up call, so that the one-time costs of a new shape (wasm heap
    // growth, kernel set-up) stay out of the timed call.
    const iters = (batch: number) => (preset === 'full' ? 1 : Math.max(3, Math.ceil(64 / batch)));
    for (const workers of workerCounts) {
      if (workers === 0) {
        for (const batch of batches) {
          const x = tf.randomUniform([batch, side, side, 3]) as tf.Tensor4D;
          const call = async () => {
            const y = local(x);
            await y.data();
            y.dispose();
          };
          emit(batch, 0, await measure(batch, iters(batch), call));
          x.dispose();
        }
        continue;
      }
      const pool = await createWorkerPool({ module: fileURLToPath(import.meta.url), spec: { config, weights: snapshotParams(store) } satisfies Spec, size: workers });
      try {
        for (const batch of batches) {
          const data = new Float32Array(batch * side * side * 3).map(() => Math.random());
          const call = async () => void (await pool.predict({ data, shape: [batch, side, side, 3] }));
          emit(batch, workers, await measure(batch, iters(batch), call));
        }
      } finally {
        await pool.close();
      }
    }
    disposeParams(store);
  }
}
