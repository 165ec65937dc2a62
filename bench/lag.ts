/**
 * `npm run bench -- lag [--clips N] [--frames N] [--weights DIR]`: how late arbex's live labels
 * follow a real change of expression, on synthetic clips whose every frame's label is known
 * (src/model/data/synth: one cartoon person ramping through expressions, the head drifting;
 * a frame's label is the strongest expression, Neutral below the threshold).
 *
 * Each clip is rendered, encoded to H.264 and decoded again (as any file is), then run through
 * the engine's live chain (chains.ts: BlazeFace every 25 frames with mesh tracking, the model
 * behind the batcher, the live EMA) with weights/demo, the model trained on these faces (the
 * real-face default does not know cartoons). For every change of the true label:
 *   rawLagMs             change → first frame whose raw label (argmax corrected) is the new one
 *   smoothedLagMs        change → first frame whose smoothed label is the new one
 *   smoothedBehindRawMs  smoothedLag − rawLag where both caught it: the smoother's own delay,
 *                        apart from the model's (the "lag a real change" target, 300 ms)
 * within the new label's segment (a series that never shows it there missed that change;
 * missedBySmoothedOnly counts the changes the raw labels caught and the smoothed ones did not,
 * with the lengths of those segments and how long the raw labels showed the new class in them:
 * a smoother drops short segments and brief flickers by design; a long, steadily shown one
 * missed would be a lag beyond its length).
 * stepResponseMs is the smoother alone on an ideal switch (one-hot A, then one-hot B).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/backends/index.js';
import { ROOT } from '../src/env.js';
import { intOption } from '../src/eval/options.js';
import { openSource } from '../src/ingest/index.js';
import { CLASSES } from '../src/model/data/synth/classes.js';
import { sampleIdentity } from '../src/model/data/synth/identity.js';
import { renderScene } from '../src/model/data/synth/render.js';
import { openMp4, scriptTrack, trackFrame } from '../src/model/data/synth/video.js';
import { loadFaceModel } from '../src/model/face-model.js';
import type { FacePrediction } from '../src/model/types.js';
import { createBatcher } from '../src/pipeline/batch/index.js';
import { createFaceDetector } from '../src/pipeline/detect/index.js';
import { createFrameProcessor } from '../src/pipeline/process.js';
import { argmax, createCausalSmoother } from '../src/pipeline/smooth/index.js';
import type { FrameOutput, SmoothingSpec } from '../src/pipeline/types.js';
import { LIVE_CHAIN } from './chains.js';
import { describeMachine, type Machine } from './machine.js';
import { addedLag, changeLags, summary, type ChangeLag } from './stats.js';

const FPS = 25;
const SIDE = 256;

export interface LagOptions {
  clips: number;
  frames: number;
  weights: string;
  seed: number;
  machine?: () => Machine;
}

type Summary = ReturnType<typeof summary>;

export interface LagLine {
  bench: 'lag';
  clips: number;
  frames: number;
  fps: number;
  weights: string;
  chain: Record<string, unknown>;
  /** Frames with a face found / all frames. */
  facesFoundPct: number;
  changes: number;
  caughtRaw: number;
  caughtSmoothed: number;
  rawLagMs: Summary;
  smoothedLagMs: Summary;
  smoothedBehindRawMs: Summary;
  /** Changes the raw labels caught and the smoothed ones never did, with the lengths of those segments (smoothing drops short ones). */
  missedBySmoothedOnly: { n: number; segmentMs: Summary; rawShownMs: Summary };
  stepResponseMs: number;
  machine: Machine;
}

const DEFAULTS: LagOptions = { clips: 2, frames: 500, weights: path.join(ROOT, 'weights', 'demo'), seed: 13 };

/** Frames until the smoother's label follows an ideal switch from one class to another. */
export function stepResponseFrames(smoothing: SmoothingSpec, classes = 7): number {
  const smoother = createCausalSmoother({ kind: smoothing.kind === 'centred' ? 'none' : smoothing.kind, alpha: smoothing.alpha, window: smoothing.window });
  const onehot = (k: number) => Array.from({ length: classes }, (_, i) => (i === k ? 1 : 0));
  let f = 0;
  for (; f < 50; f++) smoother.push(0, f, onehot(0));
  for (let g = 0; g < 1000; g++) if (argmax(smoother.push(0, f + g, onehot(1))) === 1) return g;
  return Infinity;
}

async function writeClip(file: string, seed: number, clip: number, frames: number): Promise<number[]> {
  const track = scriptTrack(sampleIdentity(seed, clip), `${seed}:lag:${clip}`, { frames });
  const mp4 = openMp4(file, SIDE, SIDE, FPS);
  try {
    for (let f = 0; f < frames; f++) await mp4.write(await renderScene([trackFrame(track, f)], SIDE, { format: 'rgb' }));
  } finally {
    await mp4.close();
  }
  return track.labels;
}

/**
 * Measures the live labels' lag behind known changes.
 *
 * @example
 * const line = await benchLag({ clips: 1, frames: 250 });
 * console.log(line.smoothedBehindRawMs.max); // e.g. 80
 */
export async function benchLag(options: Partial<LagOptions> = {}): Promise<LagLine> {
  const o = { ...DEFAULTS, ...options };
  const backend = await initBackend(undefined, { log: false });
  const chain = LIVE_CHAIN();
  const model = await loadFaceModel(o.weights, { workers: chain.workers });
  const toSynth = model.classes.map((c) => (CLASSES as readonly string[]).indexOf(c));
  if (toSynth.some((i) => i < 0)) throw new Error(`${o.weights}: classes ${model.classes.join(', ')} are not all synthetic classes (${CLASSES.join(', ')})`);
  const batcher = createBatcher<Uint8Array, FacePrediction>((crops) => model.predict(crops), chain.batch);
  const detector = await createFaceDetector({ detectEvery: chain.detectEvery });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'arbex-lag-'));
  const raw: ChangeLag[] = [];
  const smooth: ChangeLag[] = [];
  let found = 0;
  let total = 0;
  try {
    for (let c = 0; c < o.clips; c++) {
      const file = path.join(dir, `clip${c}.mp4`);
      const truth = await writeClip(file, o.seed, c, o.frames);
      detector.reset();
      const processor = createFrameProcessor({ stream: `lag${c}`, model, predict: (crop) => batcher.submit(crop), detector, smoothing: chain.smoothing });
      const rawLabels: (number | null)[] = new Array<number | null>(truth.length).fill(null);
      const smoothLabels: (number | null)[] = new Array<number | null>(truth.length).fill(null);
      const pending: Promise<void>[] = [];
      const take = (out: FrameOutput) => {
        const face = out.results.reduce<FrameOutput['results'][number] | undefined>((a, f) => (a && a.box.w * a.box.h >= f.box.w * f.box.h ? a : f), undefined);
        total++;
        if (!face) return;
        found++;
        rawLabels[out.frame] = toSynth[model.classes.indexOf(face.label)]!;
        smoothLabels[out.frame] = toSynth[model.classes.indexOf(face.smoothedLabel)]!;
      };
      for await (const frame of openSource({ kind: 'file', path: file, input: file }).frames()) {
        pending.push(processor.process(frame).then(take));
        if (pending.length >= chain.inFlight) await pending.shift();
      }
      await Promise.all(pending);
      raw.push(...changeLags(truth, rawLabels));
      smooth.push(...changeLags(truth, smoothLabels));
    }
  } finally {
    await batcher.close();
    detector.dispose();
    model.dispose();
    await rm(dir, { recursive: true, force: true });
  }
  const ms = (frames: number) => (frames * 1000) / FPS;
  const lags = (list: ChangeLag[]) => list.filter((l) => l.lag !== null).map((l) => ms(l.lag!));
  return {
    bench: 'lag',
    clips: o.clips,
    frames: o.frames,
    fps: FPS,
    weights: path.relative(ROOT, o.weights) || '.',
    chain: { detectEvery: chain.detectEvery, smoothing: chain.smoothing, workers: chain.workers },
    facesFoundPct: Math.round((1000 * found) / Math.max(1, total)) / 10,
    changes: raw.length,
    caughtRaw: raw.filter((l) => l.lag !== null).length,
    caughtSmoothed: smooth.filter((l) => l.lag !== null).length,
    rawLagMs: summary(lags(raw), 0),
    smoothedLagMs: summary(lags(smooth), 0),
    smoothedBehindRawMs: summary(addedLag(raw, smooth).map(ms), 0),
    missedBySmoothedOnly: (() => {
      const missed = raw.filter((r, i) => r.lag !== null && smooth[i]!.lag === null);
      return { n: missed.length, segmentMs: summary(missed.map((r) => ms(r.length)), 0), rawShownMs: summary(missed.map((r) => ms(r.shown)), 0) };
    })(),
    stepResponseMs: ms(stepResponseFrames(chain.smoothing)),
    machine: (o.machine ?? (() => describeMachine(backend)))(),
  };
}

export async function run(args: string[] = []): Promise<void> {
  const { values } = parseArgs({ args, options: { clips: { type: 'string' }, frames: { type: 'string' }, weights: { type: 'string' }, seed: { type: 'string' } } });
  const line = await benchLag({
    clips: intOption('clips', values.clips, DEFAULTS.clips, 1),
    frames: intOption('frames', values.frames, DEFAULTS.frames, 2),
    seed: intOption('seed', values.seed, DEFAULTS.seed, 0),
    ...(values.weights !== undefined && { weights: values.weights }),
  });
  console.log(JSON.stringify(line));
}
