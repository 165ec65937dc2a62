/**
 * The running product: one model behind one micro-batcher, shared by every stream, plus the
 * per-stream chain ingest → detect → track → align → predict → smooth. The server, the labelling
 * CLI and the evaluation all go through here, so a frame is treated the same way everywhere.
 *
 * @example
 *   const engine = await createEngine({ model, settings: readSettings() });
 *   const cam = engine.openStream('rtsp://127.0.0.1:8554/cam', { smoothing: { kind: 'trailing', window: 5 } });
 *   engine.subscribe((e) => e.type === 'output' && console.log(e.output.stream, e.output.results.map((f) => f.label)));
 *   for await (const out of engine.labelVideo('clip.mp4', { smoothing: { kind: 'centred', window: 25 } })) { ... }
 */
import { randomUUID } from 'node:crypto';
import type { Settings } from '../env.js';
import { openSource, parseSource, type ReconnectOptions } from '../ingest/index.js';
import type { FaceModel, FacePrediction } from '../model/types.js';
import { createBatcher, type BatcherOptions } from './batch/index.js';
import { startDetectorWorkers, type DetectorGraphs, type FaceDetector, type FaceDetectorOptions } from './detect/index.js';
import { createEmitter } from './events.js';
import { labelFrames } from './label-video.js';
import { createFrameProcessor } from './process.js';
import { LIVE_SMOOTHING } from './smooth/spec.js';
import { runStream, type EngineCounters } from './stream.js';
import type { TrackerOptions } from './track/index.js';
import type { Engine, EngineEvent, SmoothingSpec, StreamHandle, StreamState } from './types.js';

export interface EngineOptions {
  model: FaceModel;
  /** `network` (where network sources may connect) defaults to DEFAULT_NETWORK_POLICY: no loopback, link-local or metadata addresses. */
  settings: Pick<Settings, 'mediaDirs' | 'ffmpegPath'> & Partial<Pick<Settings, 'network'>>;
  batch: BatcherOptions;
  detector: Partial<FaceDetectorOptions>;
  /**
   * Worker threads that run the detector's graphs (BlazeFace, FaceMesh) for every stream and
   * labelling of the engine, started on first use; each stream keeps its own tracking. 0 runs
   * them in this thread, per stream, as before: same faces (to 1e-5), but a stream's detection
   * then blocks the event loop (the HTTP API, WebSockets, the other streams) for each frame.
   */
  detectorWorkers: number;
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
  /** Finished streams (ended, failed, stopped) kept listed until removed; the oldest go beyond this. */
  keepFinished: number;
}

const DEFAULTS = {
  batch: { maxBatch: 16, maxWaitMs: 8 },
  detector: {},
  detectorWorkers: 1,
  liveDetectEvery: 25,
  tracker: {},
  smoothing: LIVE_SMOOTHING as SmoothingSpec,
  maxSide: 640,
  inFlight: 3,
  reconnect: { maxAttempts: 20 },
  keepFinished: 100,
};

const FINISHED: readonly StreamState[] = ['ended', 'failed', 'stopped'];

export async function createEngine(options: Partial<EngineOptions> & Pick<EngineOptions, 'model' | 'settings'>): Promise<Engine> {
  const opts: EngineOptions = { ...DEFAULTS, ...options };
  const { model, settings } = opts;
  const batcher = createBatcher<Uint8Array, FacePrediction>((crops) => model.predict(crops), opts.batch);
  const handles = new Map<string, StreamHandle>();
  const counters: EngineCounters = { framesIn: 0, framesOut: 0, faces: 0, drops: 0, streamErrors: 0 };
  const events = createEmitter<EngineEvent>((e) => console.error(`arbex: engine listener failed: ${e.message}`));
  if (!Number.isInteger(opts.detectorWorkers) || opts.detectorWorkers < 0) throw new Error(`detectorWorkers must be an integer >= 0 (got ${opts.detectorWorkers})`);

  /** The detector workers, shared by every stream; started by the first stream or labelling, again after a failed start. */
  let detectorGraphs: Promise<DetectorGraphs> | undefined;
  const graphs =
    opts.detectorWorkers > 0
      ? () => {
          if (!detectorGraphs) {
            const starting = startDetectorWorkers({ size: opts.detectorWorkers, ...(opts.detector.modelDir && { modelDir: opts.detector.modelDir }) });
            detectorGraphs = starting;
            starting.catch(() => {
              if (detectorGraphs === starting) detectorGraphs = undefined;
            });
          }
          return detectorGraphs;
        }
      : undefined;

  /** One stream's chain; every stream shares the model through the one batcher. */
  const processorFor = (stream: string, detector: FaceDetector, smoothing: SmoothingSpec = opts.smoothing) =>
    createFrameProcessor({ stream, model, predict: (crop) => batcher.submit(crop), detector, tracker: opts.tracker, smoothing });

  const isFinished = (h: StreamHandle) => FINISHED.includes(h.info().state);

  /** Takes a stream off the list (stopping it first) and tells the listeners. */
  const remove = async (id: string): Promise<boolean> => {
    const handle = handles.get(id);
    if (!handle) return false;
    await handle.stop();
    if (!handles.delete(id)) return true;
    events.emit({ type: 'removed', stream: id });
    return true;
  };

  /** Keeps at most `keepFinished` finished streams listed (oldest first out). */
  const pruneFinished = () => {
    const finished = [...handles.values()].filter(isFinished);
    for (const h of finished.slice(0, Math.max(0, finished.length - opts.keepFinished))) void remove(h.id);
  };

  const onStreamEvent = (event: EngineEvent) => {
    events.emit(event);
    if (event.type === 'stream' && FINISHED.includes(event.info.state)) pruneFinished();
  };

  return {
    classes: model.classes,
    openStream(input, streamOptions = {}) {
      const source = parseSource(input, { mediaDirs: settings.mediaDirs, network: settings.network });
      const handle = runStream({
        id: randomUUID(),
        input,
        source,
        options: streamOptions,
        open: (src, o) => openSource(src, { ...o, ffmpegPath: settings.ffmpegPath, maxSide: opts.maxSide, realtime: true, reconnect: opts.reconnect, network: settings.network }),
        detector: { detectEvery: opts.liveDetectEvery, ...opts.detector },
        graphs,
        processorFor,
        inFlight: opts.inFlight,
        counters,
        onEvent: onStreamEvent,
      });
      handles.set(handle.id, handle);
      events.emit({ type: 'stream', info: handle.info() });
      return handle;
    },
    streams: () => [...handles.values()],
    removeStream: remove,
    subscribe: events.subscribe,
    labelVideo: (file, labelOptions) =>
      labelFrames(
        {
          file,
          open: (path) => openSource({ kind: 'file', path, input: path }, { ffmpegPath: settings.ffmpegPath, maxSide: opts.maxSide }),
          detector: opts.detector,
          graphs,
          processorFor,
          inFlight: opts.inFlight,
          classes: model.classes,
          onFrame: () => counters.framesIn++,
        },
        labelOptions,
      ),
    metrics() {
      const b = batcher.stats();
      const running = [...handles.values()].filter((h) => !isFinished(h));
      let drops = counters.drops;
      for (const h of handles.values()) if (h.info().state !== 'stopped') drops += h.info().drops;
      return {
        streams: running.length,
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
      events.clear();
      await batcher.close();
      model.dispose();
      const started = detectorGraphs;
      detectorGraphs = undefined;
      await (await started?.catch(() => undefined))?.dispose();
    },
  };
}
