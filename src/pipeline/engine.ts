/**
 * The running product: one model behind one micro-batcher, shared by every stream, plus the
 * per-stream chain ingest → detect → track → align → predict → smooth. The server, the labelling
 * CLI and the evaluation all go through here, so a frame is treated the same way everywhere.
 *
 * @example
 *   const engine = await createEngine({ model, settings: readSettings() });
 *   const cam = engine.openStream('rtsp://127.0.0.1:8554/cam', { smoothing: { kind: 'trailing', window: 5 } });
 *   cam.subscribe((e) => e.type === 'output' && console.log(e.output.results.map((f) => f.label)));
 *   for await (const out of engine.labelVideo('clip.mp4', { smoothing: { kind: 'centred', window: 25 } })) { ... }
 */
import { randomUUID } from 'node:crypto';
import sharp from 'sharp';
import type { Settings } from '../env.js';
import { openSource, parseSource, redact, type IngestSource, type ReconnectOptions } from '../ingest/index.js';
import type { FaceModel, FacePrediction } from '../model/types.js';
import { createBatcher, type BatcherOptions } from './batch/index.js';
import { createFaceDetector, type FaceDetector, type FaceDetectorOptions } from './detect/index.js';
import { smoothOffline } from './offline.js';
import { createFrameProcessor, type FrameProcessor } from './process.js';
import { LIVE_SMOOTHING, smoothingWindow } from './smooth/spec.js';
import type { TrackerOptions } from './track/index.js';
import type { Engine, Frame, FrameOutput, LabelOptions, SmoothingSpec, StreamEvent, StreamHandle, StreamInfo, StreamOptions, StreamState } from './types.js';

export interface EngineOptions {
  model: FaceModel;
  /** `network` (where network sources may connect) defaults to DEFAULT_NETWORK_POLICY: no loopback, link-local or metadata addresses. */
  settings: Pick<Settings, 'mediaDirs' | 'ffmpegPath'> & Partial<Pick<Settings, 'network'>>;
  batch: BatcherOptions;
  detector: Partial<FaceDetectorOptions>;
  /**
   * Live streams run BlazeFace every this many frames while their faces are followed by the mesh
   * (it also runs at once when a face is lost or none is tracked). Detection is most of a frame's
   * cost, so this is what lets several real-time streams share two cores; the price is that a
   * new face next to tracked ones shows up to this many frames late. Labelling uses the
   * detector's own, more frequent default (or LabelOptions.detectEvery).
   */
  liveDetectEvery: number;
  tracker: Partial<TrackerOptions>;
  /** Default smoothing of live streams. */
  smoothing: SmoothingSpec;
  /** Frames are decoded so that their longer side is at most this many pixels. */
  maxSide: number;
  /** Frames of one stream inside the pipeline at once (detection of the next overlaps prediction). */
  inFlight: number;
  /** Reconnection of live streams: a stream that fails `maxAttempts` times in a row ends `failed`. */
  reconnect: Partial<ReconnectOptions>;
}

const DEFAULTS = {
  batch: { maxBatch: 16, maxWaitMs: 8 },
  detector: {},
  liveDetectEvery: 25,
  tracker: {},
  smoothing: LIVE_SMOOTHING as SmoothingSpec,
  maxSide: 640,
  inFlight: 3,
  reconnect: { maxAttempts: 20 },
};

/** Frames per second over a sliding window of recent timestamps. */
function rateMeter(windowMs = 2000) {
  const times: number[] = [];
  return {
    tick(now = Date.now()) {
      times.push(now);
      while (times.length && times[0] < now - windowMs) times.shift();
    },
    rate(now = Date.now()) {
      while (times.length && times[0] < now - windowMs) times.shift();
      return times.length / (windowMs / 1000);
    },
  };
}

export async function createEngine(options: Partial<EngineOptions> & Pick<EngineOptions, 'model' | 'settings'>): Promise<Engine> {
  const opts: EngineOptions = { ...DEFAULTS, ...options };
  const { model } = opts;
  const batcher = createBatcher<Uint8Array, FacePrediction>((crops) => model.predict(crops), opts.batch);
  const handles = new Map<string, StreamHandle>();
  const counters = { framesIn: 0, framesOut: 0, faces: 0, drops: 0, streamErrors: 0 };

  /** One stream's chain; every stream shares the model through the one batcher. */
  const processorFor = (stream: string, detector: FaceDetector, smoothing: SmoothingSpec): FrameProcessor =>
    createFrameProcessor({ stream, model, predict: (crop) => batcher.submit(crop), detector, tracker: opts.tracker, smoothing });

  /** Drives frames from a source through a processor, `inFlight` frames at a time, outputs in order. */
  async function drive(frames: AsyncIterable<Frame>, processor: FrameProcessor, emit: (out: FrameOutput) => void, onFrame?: (f: Frame) => void) {
    const pending: Promise<FrameOutput>[] = [];
    for await (const frame of frames) {
      counters.framesIn++;
      onFrame?.(frame);
      pending.push(processor.process(frame));
      if (pending.length >= opts.inFlight) emit(await pending.shift()!);
    }
    while (pending.length) emit(await pending.shift()!);
  }

  function openStream(input: string, streamOptions: StreamOptions = {}): StreamHandle {
    const { mediaDirs, network } = opts.settings;
    const source = parseSource(input, { mediaDirs, network });
    const id = randomUUID();
    const name = streamOptions.name ?? input;
    const listeners = new Set<(e: StreamEvent) => void>();
    const fpsIn = rateMeter();
    const fpsOut = rateMeter();
    const info: StreamInfo = { id, name, source: input, state: 'connecting', fpsIn: 0, fpsOut: 0, framesIn: 0, framesOut: 0, drops: 0, faces: 0, startedAt: new Date().toISOString() };
    let latest: Frame | undefined;
    let latestJpeg: { index: number; jpeg: Promise<Buffer> } | undefined;
    let stopped = false;
    let lastDetail: string | undefined;

    const send = (e: StreamEvent) => {
      for (const l of listeners) {
        try {
          l(e);
        } catch (err) {
          // A broken listener must not stop the stream or the other listeners.
          console.error(`arbex: stream ${id} listener failed: ${(err as Error).message}`);
        }
      }
    };
    const setState = (state: StreamState, error?: string) => {
      if (info.state === state && !error) return;
      info.state = state;
      if (error) info.lastError = error;
      send({ type: 'state', stream: id, state, error });
    };

    // A stream plays files at their own speed, as a camera would; network sources drop the
    // oldest frames when the pipeline is behind (ingest's default for them).
    const frames: IngestSource = openSource(source, {
      ffmpegPath: opts.settings.ffmpegPath,
      maxSide: opts.maxSide,
      fps: streamOptions.fps,
      loop: streamOptions.loop,
      realtime: true,
      reconnect: opts.reconnect,
      network,
      onState: (e) => {
        setState(e.state, e.error);
        // What lies behind a uniform "could not connect" is for the operator: logged once per change.
        if (e.detail && e.detail !== lastDetail) console.error(`arbex: stream ${id} (${redact(input)}): ${redact(`${e.error ?? e.state}: ${e.detail}`)}`);
        lastDetail = e.detail;
      },
    });

    const run = (async () => {
      const detector = await createFaceDetector({ detectEvery: opts.liveDetectEvery, ...opts.detector });
      try {
        const processor = processorFor(id, detector, streamOptions.smoothing ?? opts.smoothing);
        await drive(
          frames.frames(),
          processor,
          (output) => {
            info.framesOut++;
            info.faces = output.faces;
            counters.framesOut++;
            counters.faces += output.faces;
            fpsOut.tick();
            send({ type: 'output', output });
          },
          (frame) => {
            latest = frame;
            info.framesIn++;
            fpsIn.tick();
          },
        );
      } finally {
        detector.dispose();
      }
    })().catch((e: Error) => {
      counters.streamErrors++;
      if (!stopped) setState('failed', e.message);
    });

    const handle: StreamHandle = {
      id,
      info() {
        const s = frames.stats();
        return { ...info, drops: s.drops, fpsIn: fpsIn.rate(), fpsOut: fpsOut.rate() };
      },
      latestJpeg() {
        const frame = latest;
        if (!frame) return Promise.resolve(undefined);
        if (latestJpeg?.index !== frame.index) {
          const jpeg = sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } }).jpeg({ quality: 75 }).toBuffer();
          latestJpeg = { index: frame.index, jpeg };
        }
        return latestJpeg.jpeg;
      },
      subscribe(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await frames.stop();
        await run;
        counters.drops += frames.stats().drops;
        setState('stopped');
        listeners.clear();
        handles.delete(id);
        latest = undefined;
      },
    };
    handles.set(id, handle);
    return handle;
  }

  async function* labelVideo(file: string, labelOptions: LabelOptions = {}): AsyncIterable<FrameOutput> {
    const { smoothing = { kind: 'none' }, signal } = labelOptions;
    const source = { kind: 'file' as const, path: file, input: file };
    const frames = openSource(source, { ffmpegPath: opts.settings.ffmpegPath, maxSide: opts.maxSide });
    const onAbort = () => void frames.stop();
    signal?.addEventListener('abort', onAbort);
    const detector = await createFaceDetector({ ...opts.detector, ...(labelOptions.detectEvery ? { detectEvery: labelOptions.detectEvery } : {}) });
    try {
      const processor = processorFor(file, detector, smoothing.kind === 'centred' ? { kind: 'none' } : smoothing);
      // Known once ffmpeg has reported the container's duration and rate (an estimate: the exact
      // count is only known at the end).
      const total = () => {
        const i = frames.info();
        return i?.durationSec && i.fps ? Math.round(i.durationSec * i.fps) : undefined;
      };
      const outputs: FrameOutput[] = [];
      const queue: FrameOutput[] = [];
      let wake: (() => void) | undefined;
      let done = false;
      let failure: unknown;
      // Labelling keeps every frame: ingest waits for us (files are never dropped).
      const driving = drive(frames.frames(), processor, (out) => {
        labelOptions.onProgress?.(out.frame + 1, total());
        if (smoothing.kind === 'centred') outputs.push(out);
        else queue.push(out);
        wake?.();
      })
        .catch((e) => (failure = e))
        .finally(() => {
          done = true;
          wake?.();
        });
      while (!done || queue.length) {
        if (queue.length) yield queue.shift()!;
        else await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
      await driving;
      if (signal?.aborted) throw new Error(`labelling of ${file} was cancelled`);
      if (failure) throw failure;
      if (smoothing.kind === 'centred') {
        smoothOffline(outputs, smoothingWindow(smoothing), model.classes);
        yield* outputs;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      detector.dispose();
      await frames.stop();
    }
  }

  return {
    classes: model.classes,
    openStream,
    streams: () => [...handles.values()],
    labelVideo,
    metrics() {
      const b = batcher.stats();
      let drops = counters.drops;
      for (const h of handles.values()) drops += h.info().drops;
      return {
        streams: handles.size,
        frames_in_total: counters.framesIn,
        frames_out_total: counters.framesOut,
        faces_total: counters.faces,
        drops_total: drops,
        stream_errors_total: counters.streamErrors,
        batches_total: b.batches,
        batch_items_total: b.items,
        batch_size_mean: b.meanBatchSize,
        inference_ms_last: b.inferenceMs.last,
        inference_ms_mean: b.inferenceMs.mean,
        batch_queue_depth: b.queueDepth,
      };
    },
    async close() {
      await Promise.all([...handles.values()].map((h) => h.stop()));
      await batcher.close();
      model.dispose();
    },
  };
}
