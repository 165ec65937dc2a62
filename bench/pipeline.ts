/**
 * The video path's speed, one JSON line per figure:
 *   decode      ffmpeg → RGB frames only (the upper limit), 640x480 face_pan.mp4
 *   detect      + BlazeFace/FaceMesh detection with mesh tracking (detectEvery 5)
 *   end-to-end  + alignment, the product's default model (ARBEX_WEIGHTS, else weights/fer) behind
 *               the shared batcher, smoothing; frames/s and the latency from frame decoded to
 *               prediction ready (p50/p95). BENCH_PRESET=lite|tiny|full: that POSTER++ preset
 *               with random weights instead (speed does not depend on their values)
 *   streams     3 concurrent 25 fps streams (face_pan.mp4 looped at its own speed, one face
 *               each) for BENCH_STREAM_SECONDS (default 20): frames/s out and drops per stream,
 *               and the main thread's event-loop delay (p50/p99/max) meanwhile
 * The detect, end-to-end and streams lines carry cpuMsPerFrame: CPU of this process (all its
 * threads) per frame, steadier than frames/s on a loaded machine (decode's ffmpeg not included).
 * Environment: BENCH_WORKERS (model worker threads, default 1), BENCH_DETECT_EVERY (BlazeFace
 * every N frames while faces are tracked by their mesh; default: the detector's own, 5, for the
 * detect and end-to-end stages, the engine's live default for the streams stage),
 * BENCH_DETECTOR_WORKERS (threads running BlazeFace and FaceMesh; default 1, the engine's; 0: the
 * main thread, as before), ARBEX_ENGINE (onnx|tfjs: the engine of a cnn extractor; default onnx
 * when onnxruntime-node loads). The end-to-end and streams lines name the engine.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { initBackend } from '../src/backends/index.js';
import { readSettings, ROOT } from '../src/env.js';
import { openSource, type FileSource } from '../src/ingest/index.js';
import { createArbex, saveArbex, validateArbexConfig } from '../src/model/arbex.js';
import { loadFaceModel } from '../src/model/face-model.js';
import { createParams } from '../src/model/nn/params.js';
import { createBatcher } from '../src/pipeline/batch/index.js';
import { createFaceDetector, startDetectorWorkers } from '../src/pipeline/detect/index.js';
import { createEngine } from '../src/pipeline/engine.js';
import { createFrameProcessor } from '../src/pipeline/process.js';
import type { FacePrediction } from '../src/model/types.js';
import { ASTRONAUT, FACE_PAN as CLIP } from '../test/fixtures/media.js';
import { describeMachine } from './machine.js';

const CLASSES = ['Neutral', 'Anger', 'Disgust', 'Fear', 'Happiness', 'Sadness', 'Surprise', 'Other'];

const fileSource = (file: string): FileSource => ({ kind: 'file', path: file, input: file });
const percentile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

export async function run(): Promise<void> {
  const backend = await initBackend();
  const machine = describeMachine(backend);
  const print = (o: object) => console.log(JSON.stringify({ bench: 'pipeline', ...o, machine: { ...machine, load1: os.loadavg()[0] } }));
  const workers = Number(process.env.BENCH_WORKERS ?? 1);
  const detectEvery = process.env.BENCH_DETECT_EVERY ? Number(process.env.BENCH_DETECT_EVERY) : undefined;
  const detectorOptions = detectEvery ? { detectEvery } : {};
  const detectorWorkers = Number(process.env.BENCH_DETECTOR_WORKERS ?? 1);
  const cpuMs = () => {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  };

  // Decode only.
  let t0 = performance.now();
  let n = 0;
  for await (const _ of openSource(fileSource(CLIP)).frames()) n++;
  print({ stage: 'decode', frames: n, framesPerSec: (n * 1000) / (performance.now() - t0), size: '640x480' });

  // Decode + detection.
  const graphs = detectorWorkers > 0 ? await startDetectorWorkers({ size: detectorWorkers }) : undefined;
  const detector = await createFaceDetector(detectorOptions, graphs);
  const frames = [];
  for await (const f of openSource(fileSource(CLIP)).frames()) frames.push(f);
  await detector.detect(frames[0]);
  detector.reset();
  t0 = performance.now();
  let c0 = cpuMs();
  let faces = 0;
  for (const f of frames) faces += (await detector.detect(f)).length;
  print({ stage: 'detect', frames: frames.length, faces, framesPerSec: (frames.length * 1000) / (performance.now() - t0), cpuMsPerFrame: (cpuMs() - c0) / frames.length, detectEvery: detectEvery ?? 'default', detectorWorkers });
  detector.reset();

  // End to end with the default model, or a preset with random weights.
  const preset = process.env.BENCH_PRESET;
  const tmp = preset ? await mkdtemp(path.join(os.tmpdir(), 'arbex-bench-')) : undefined;
  const dir = tmp ?? readSettings().weightsDir;
  if (tmp) {
    const arbex = createArbex(createParams(1), validateArbexConfig({ classes: CLASSES, extractor: preset }));
    await saveArbex(tmp, arbex);
    arbex.dispose();
  }
  const modelName = preset ?? path.relative(ROOT, dir);
  const engineSetting = readSettings().engine;
  const model = await loadFaceModel(dir, { workers, engine: engineSetting });
  const batcher = createBatcher<Uint8Array, FacePrediction>((c) => model.predict(c), { maxBatch: 16, maxWaitMs: 8 });
  const processor = createFrameProcessor({ stream: 'bench', model, predict: (c) => batcher.submit(c), detector, smoothing: { kind: 'ema', alpha: 0.3 } });
  await processor.process({ ...frames[0], index: -1 });
  const latency: number[] = [];
  const pending: Promise<unknown>[] = [];
  t0 = performance.now();
  c0 = cpuMs();
  for await (const frame of openSource(fileSource(CLIP)).frames()) {
    const decoded = performance.now();
    pending.push(processor.process(frame).then(() => latency.push(performance.now() - decoded)));
    if (pending.length >= 3) await pending.shift();
  }
  await Promise.all(pending);
  const secs = (performance.now() - t0) / 1000;
  print({ stage: 'end-to-end', model: modelName, engine: model.engine, workers, detectorWorkers, frames: latency.length, framesPerSec: latency.length / secs, cpuMsPerFrame: (cpuMs() - c0) / latency.length, latencyMsP50: percentile(latency, 0.5), latencyMsP95: percentile(latency, 0.95) });
  await batcher.close();
  detector.dispose();
  await graphs?.dispose();
  model.dispose();

  // Three concurrent 25 fps streams through the engine.
  const seconds = Number(process.env.BENCH_STREAM_SECONDS ?? 20);
  const streamModel = await loadFaceModel(dir, { workers, engine: engineSetting });
  const engine = await createEngine({ model: streamModel, settings: { mediaDirs: [path.dirname(CLIP)] }, detector: detectorOptions, detectorWorkers });
  // (Without BENCH_DETECT_EVERY the streams use the engine's live default, liveDetectEvery.)
  // Warm up first (the detector workers start on first use), so that the window measures streams, not starts.
  for await (const _ of engine.labelVideo(ASTRONAUT)) break;
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  c0 = cpuMs();
  const streams = [0, 1, 2].map((i) => engine.openStream(CLIP, { name: `s${i}`, loop: true }));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const infos = streams.map((s) => s.info());
  const cpu = cpuMs() - c0;
  loop.disable();
  const framesOut = infos.reduce((a, i) => a + i.framesOut, 0);
  const loopMs = (ns: number) => Math.round(ns / 1e5) / 10;
  print({
    stage: 'streams', model: modelName, engine: streamModel.engine, streams: 3, seconds, sourceFps: 25,
    framesPerSecOut: infos.map((i) => Math.round(i.fpsOut * 10) / 10), framesOut: infos.map((i) => i.framesOut), drops: infos.map((i) => i.drops),
    cpuMsPerFrame: framesOut ? cpu / framesOut : null,
    eventLoopDelayMs: { p50: loopMs(loop.percentile(50)), p99: loopMs(loop.percentile(99)), max: loopMs(loop.max) },
    workers, detectorWorkers,
  });
  await engine.close();
  if (tmp) await rm(tmp, { recursive: true });
}
