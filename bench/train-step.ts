/**
 * One full training step (forward, loss, backward, Adam update) of a MobileFaceNet-sized CNN
 * (about 1 M parameters, 112x112 input) on the backend initBackend picks (ARBEX_BACKEND, else the
 * best available: wasm on machines without tfjs-node). This is the figure
 * that decides whether fine-tuning the whole feature extractor on this kind of machine is
 * practical; it depends on the wasm gradient kernels in src/backends/wasm-kernels.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { readSettings } from '../src/env.js';
import { initBackend } from '../src/backends/index.js';
import { createParams, countParams, disposeParams, seededRandom, trainableVars, type ParamStore } from '../src/model/nn/params.js';
import { batchNorm, conv2d, depthwiseConv2d, linear, prelu, sequential, type Layer } from '../src/model/nn/layers.js';
import { describeMachine } from './machine.js';

export interface TrainStepOptions {
  batch: number;
  size: number;
  classes: number;
  /** Steps run before timing (the first ones build wasm operator caches). */
  warmup: number;
  /** Timed steps; the median is reported. */
  steps: number;
  /** Print per-kernel times of one step to stderr (tf.profile). */
  profile: boolean;
}

const defaults: TrainStepOptions = { batch: 16, size: 112, classes: 7, warmup: 2, steps: 5, profile: false };

/** Conv (or depthwise conv) + BatchNorm, followed by PReLU unless `linearOut`. */
function convBn(
  store: ParamStore,
  name: string,
  o: { inCh: number; outCh: number; kernel: number; stride?: number; depthwise?: boolean; linearOut?: boolean; pad?: 'same' | 'valid' },
): Layer {
  const conv = o.depthwise
    ? depthwiseConv2d(store, `${name}.dw`, { channels: o.inCh, kernel: o.kernel, stride: o.stride, pad: o.pad })
    : conv2d(store, `${name}.conv`, { inCh: o.inCh, outCh: o.outCh, kernel: o.kernel, stride: o.stride, pad: o.pad });
  const bn = batchNorm(store, `${name}.bn`, o.outCh);
  return o.linearOut ? sequential(conv, bn) : sequential(conv, bn, prelu(store, `${name}.prelu`, o.outCh));
}

/** MobileNetV2 inverted residual: expand 1x1, depthwise 3x3, linear project 1x1. */
function bottleneck(store: ParamStore, name: string, inCh: number, outCh: number, expand: number, stride: number): Layer {
  const mid = inCh * expand;
  const body = sequential(
    convBn(store, `${name}.expand`, { inCh, outCh: mid, kernel: 1 }),
    convBn(store, `${name}.depth`, { inCh: mid, outCh: mid, kernel: 3, stride, depthwise: true }),
    convBn(store, `${name}.project`, { inCh: mid, outCh, kernel: 1, linearOut: true }),
  );
  return stride === 1 && inCh === outCh ? (x, ctx) => tf.add(x, body(x, ctx)) : body;
}

/** MobileFaceNet (Chen et al. 2018) with a 7-way classifier on the 128-d embedding. */
export function mobileFaceNet(store: ParamStore, classes: number): Layer {
  const layers: Layer[] = [
    convBn(store, 'stem', { inCh: 3, outCh: 64, kernel: 3, stride: 2 }),
    convBn(store, 'stemDw', { inCh: 64, outCh: 64, kernel: 3, depthwise: true }),
  ];
  // [expansion, channels, repeats, first stride]
  const stages: [number, number, number, number][] = [
    [2, 64, 5, 2],
    [4, 128, 1, 2],
    [2, 128, 6, 1],
    [4, 128, 1, 2],
    [2, 128, 2, 1],
  ];
  let ch = 64;
  stages.forEach(([t, c, n, s], i) => {
    for (let j = 0; j < n; j++) layers.push(bottleneck(store, `stage${i}.${j}`, ch, c, t, j === 0 ? s : 1));
    ch = c;
  });
  layers.push(
    convBn(store, 'conv512', { inCh: ch, outCh: 512, kernel: 1 }),
    // Global depthwise conv over the final 7x7 map, then a linear 128-d embedding.
    convBn(store, 'gdc', { inCh: 512, outCh: 512, kernel: 7, depthwise: true, linearOut: true, pad: 'valid' }),
    (x) => x.reshape([x.shape[0], 512]),
    linear(store, 'embed', 512, 128, false),
    batchNorm(store, 'embedBn', 128),
    linear(store, 'classifier', 128, classes),
  );
  return sequential(...layers);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Runs the benchmark and prints one JSON line. */
export async function run(options: Partial<TrainStepOptions> = {}): Promise<void> {
  const o = { ...defaults, ...options };
  const backend = await initBackend(readSettings().backend);
  const store = createParams(7);
  const model = mobileFaceNet(store, o.classes);
  const vars = trainableVars(store);
  const optimizer = tf.train.adam(1e-3);

  const rng = seededRandom(11);
  const pixels = Float32Array.from({ length: o.batch * o.size * o.size * 3 }, () => rng() * 2 - 1);
  const x = tf.tensor4d(pixels, [o.batch, o.size, o.size, 3]);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: o.batch }, (_, i) => i % o.classes), 'int32'), o.classes);
  const step = (): number => {
    const cost = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(labels, model(x, { training: true })) as tf.Scalar, true, vars);
    const value = cost!.dataSync()[0];
    cost!.dispose();
    return value;
  };

  for (let i = 0; i < o.warmup; i++) step();
  const tensorsBefore = tf.memory().numTensors;
  const times: number[] = [];
  const cpuTimes: number[] = [];
  let loss = NaN;
  for (let i = 0; i < o.steps; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    loss = step();
    const c = process.cpuUsage(c0);
    cpuTimes.push((c.user + c.system) / 1000);
    times.push(performance.now() - t0);
  }
  const leakedTensors = tf.memory().numTensors - tensorsBefore;

  if (o.profile) {
    const profile = await tf.profile(() => {
      step();
    });
    const byKernel = new Map<string, number>();
    for (const k of profile.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
    const top = [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 15);
    for (const [name, ms] of top) process.stderr.write(`${name.padEnd(40)} ${ms.toFixed(1)} ms\n`);
  }

  console.log(
    JSON.stringify({
      bench: 'train-step',
      backend: backend.name,
      batch: o.batch,
      size: o.size,
      params: countParams(store),
      msPerStep: Math.round(median(times)),
      msMin: Math.round(Math.min(...times)),
      // CPU time of this process per step: on a machine shared with other work it stays close to
      // what the step takes alone, while msPerStep grows with the load.
      cpuMsPerStep: Math.round(median(cpuTimes)),
      steps: o.steps,
      loss: Math.round(loss * 1e4) / 1e4,
      leakedTensors,
      machine: describeMachine(backend),
    }),
  );
  tf.dispose([x, labels]);
  optimizer.dispose();
  disposeParams(store);
}
