/**
 * `npm run bench -- engine [weightsDir]`: CPU milliseconds per face of the default model
 * (weights/fer) with its extractor on tfjs (the current backend) and on onnxruntime-node
 * (1 intra-op thread), in this thread, at batch 1, 3 and 8: the extractor alone, and the whole
 * model (extractor + ARBEx head on tfjs, what loadFaceModel runs). The two engines alternate in
 * short rounds so that both see the same load on a shared machine; figures are medians over the
 * rounds of process CPU time (all threads) and wall time per face. One JSON line per engine and
 * batch, then one ratio line per batch:
 *   {bench:'engine', part, engine, batch, cpuMsPerFace, wallMsPerFace, load: [1, 5, 15 min], machine}
 *   {bench:'engine', part, batch, tfjsOverOnnxCpu, tfjsOverOnnxWall}
 * Environment: BENCH_BATCHES (default "1,3,8"), BENCH_ROUNDS (default 7).
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backends/index.js';
import { createOnnxEngine } from '../src/backends/onnx.js';
import type { Batch } from '../src/backends/worker-pool.js';
import { ROOT } from '../src/env.js';
import { createModelRunner, loadArbex, predictBatches } from '../src/model/arbex.js';
import { cnnGraph } from '../src/model/extractor/cnn-graph.js';
import type { CnnConfig } from '../src/model/extractor/index.js';
import { describeMachine } from './machine.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round3 = (x: number) => Math.round(x * 1000) / 1000;
const load = () => os.loadavg().map((x) => Math.round(x * 100) / 100);

/** CPU and wall ms per face of `calls` calls of `fn` on a batch of `batch`. */
async function timed(batch: number, calls: number, fn: () => Promise<void>) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1000 / calls / batch, wall: wall / calls / batch };
}

export async function run(args: string[]): Promise<void> {
  const backend = await initBackend(undefined, { log: false });
  const dir = args[0] ?? `${ROOT}/weights/fer`;
  const batches = (process.env.BENCH_BATCHES ?? '1,3,8').split(',').map(Number);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
  const model = await loadArbex(dir);
  if (model.config.extractor.kind !== 'cnn') throw new Error(`${dir}: the onnx engine runs only cnn extractors (this one is ${model.config.extractor.kind})`);
  const onnx = await createOnnxEngine(cnnGraph(model.store, model.config.extractor as CnnConfig, model.extractor.name), { threads: 1 });
  const runner = await createModelRunner(model, 'onnx');
  const side = model.config.extractor.inputSize;
  const machine = describeMachine(backend);
  process.stdout.write(JSON.stringify({ bench: 'engine', weights: dir, extractor: model.config.extractor, macsPerFace: model.extractor.macsPerFace, loadBefore: load() }) + '\n');
  for (const batch of batches) {
    const input: Batch = { data: Float32Array.from({ length: batch * side * side * 3 }, () => Math.random()), shape: [batch, side, side, 3] };
    const shape = input.shape as [number, number, number, number];
    const parts = {
      extractor: {
        tfjs: async () => {
          const e = tf.tidy(() => model.embed(tf.tensor4d(input.data, shape)));
          await e.data();
          e.dispose();
        },
        onnx: async () => void (await onnx.run(input)),
      },
      model: {
        tfjs: async () => void predictBatches(model, input),
        onnx: async () => void (await runner.predict(input)),
      },
    };
    // About 24 faces per engine per round, at least 2 calls.
    const calls = Math.max(2, Math.ceil(24 / batch));
    for (const [part, fns] of Object.entries(parts)) {
      for (const fn of Object.values(fns)) await fn(); // warm-up of this shape
      const samples = { tfjs: { cpu: [] as number[], wall: [] as number[] }, onnx: { cpu: [] as number[], wall: [] as number[] } };
      for (let r = 0; r < rounds; r++) {
        for (const engine of ['tfjs', 'onnx'] as const) {
          const t = await timed(batch, calls, fns[engine]);
          samples[engine].cpu.push(t.cpu);
          samples[engine].wall.push(t.wall);
        }
      }
      for (const engine of ['tfjs', 'onnx'] as const) {
        const s = samples[engine];
        process.stdout.write(
          JSON.stringify({ bench: 'engine', part, engine, batch, cpuMsPerFace: round3(median(s.cpu)), wallMsPerFace: round3(median(s.wall)), load: load(), threads: engine === 'onnx' ? 1 : undefined, machine }) + '\n',
        );
      }
      const ratio = (k: 'cpu' | 'wall') => Math.round((median(samples.tfjs[k]) / median(samples.onnx[k])) * 100) / 100;
      process.stdout.write(JSON.stringify({ bench: 'engine', part, batch, tfjsOverOnnxCpu: ratio('cpu'), tfjsOverOnnxWall: ratio('wall') }) + '\n');
    }
  }
  await runner.dispose();
  await onnx.dispose();
  model.dispose();
}
