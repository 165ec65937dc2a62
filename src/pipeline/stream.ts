/**
 * One live stream of the engine: its source, its chain of stages, its info and its events.
 *
 * @example
 *   const handle = runStream({ id, input, source, options: {}, open, processorFor, inFlight: 3, counters, onEvent });
 */
import sharp from 'sharp';
import { redact, type IngestOptions, type IngestSource, type Source } from '../ingest/index.js';
import { createFaceDetector, type DetectorGraphs, type FaceDetector, type FaceDetectorOptions } from './detect/index.js';
import { drive, rateMeter } from './drive.js';
import { createEmitter } from './events.js';
import type { FrameProcessor } from './process.js';
import type { EngineEvent, Frame, FrameOutput, SmoothingSpec, StreamEvent, StreamHandle, StreamInfo, StreamOptions, StreamState } from './types.js';

/** The engine's running totals over every stream, for /metrics. */
export interface EngineCounters {
  framesIn: number;
  framesOut: number;
  faces: number;
  drops: number;
  streamErrors: number;
}

export interface StreamDeps {
  id: string;
  /** The source as the caller gave it (for the info, redacted in logs). */
  input: string;
  source: Source;
  options: StreamOptions;
  /** Opens the source (ingest's openSource with the engine's settings). */
  open(source: Source, options: Pick<IngestOptions, 'fps' | 'loop' | 'onState'>): IngestSource;
  detector: Partial<FaceDetectorOptions>;
  /** The engine's shared detector graphs (worker threads); undefined: this stream loads its own, in this thread. */
  graphs?: () => Promise<DetectorGraphs>;
  processorFor(stream: string, detector: FaceDetector, smoothing: SmoothingSpec | undefined): FrameProcessor;
  inFlight: number;
  counters: EngineCounters;
  /** The engine's own listeners: every event of this stream, plus its info as it changes. */
  onEvent(event: EngineEvent): void;
}

/** How often, at most, a stream's counters are pushed while its frames flow. */
const INFO_EVERY_MS = 1000;

export function runStream(deps: StreamDeps): StreamHandle {
  const { id, input, options, counters } = deps;
  const events = createEmitter<StreamEvent>((err) => console.error(`arbex: stream ${id} listener failed: ${err.message}`));
  const fpsIn = rateMeter();
  const fpsOut = rateMeter();
  const info: StreamInfo = { id, name: options.name ?? input, source: input, state: 'connecting', fpsIn: 0, fpsOut: 0, framesIn: 0, framesOut: 0, drops: 0, faces: 0, startedAt: new Date().toISOString() };
  let latest: Frame | undefined;
  let latestJpeg: { index: number; jpeg: Promise<Buffer> } | undefined;
  let stopped = false;
  let lastDetail: string | undefined;
  let infoSentMs = 0;
  // Unset while ingest starts: it reports its first state from inside openSource.
  let frames: IngestSource | undefined;

  const snapshot = (): StreamInfo => ({ ...info, drops: frames?.stats().drops ?? 0, fpsIn: fpsIn.rate(), fpsOut: fpsOut.rate() });
  const pushInfo = (error?: string) => {
    infoSentMs = Date.now();
    deps.onEvent({ type: 'stream', info: snapshot(), ...(error ? { error } : {}) });
  };
  const setState = (state: StreamState, error?: string) => {
    if (info.state === state && !error) return;
    info.state = state;
    if (error) info.lastError = error;
    events.emit({ type: 'state', stream: id, state, error });
    pushInfo(error);
  };

  // A stream plays files at their own speed, as a camera would; network sources drop the
  // oldest frames when the pipeline is behind (ingest's default for them).
  const ingest = deps.open(deps.source, {
    fps: options.fps,
    loop: options.loop,
    onState: (e) => {
      setState(e.state, e.error);
      // What lies behind a uniform "could not connect" is for the operator: logged once per change.
      if (e.detail && e.detail !== lastDetail) console.error(`arbex: stream ${id} (${redact(input)}): ${redact(`${e.error ?? e.state}: ${e.detail}`)}`);
      lastDetail = e.detail;
    },
  });

  frames = ingest;

  const run = (async () => {
    const detector = await createFaceDetector(deps.detector, await deps.graphs?.());
    try {
      const processor = deps.processorFor(id, detector, options.smoothing);
      const onOutput = (output: FrameOutput) => {
        info.framesOut++;
        info.faces = output.faces;
        counters.framesOut++;
        counters.faces += output.faces;
        fpsOut.tick();
        events.emit({ type: 'output', output });
        deps.onEvent({ type: 'output', output });
        if (Date.now() - infoSentMs >= INFO_EVERY_MS) pushInfo();
      };
      await drive(ingest.frames(), processor, deps.inFlight, onOutput, (frame) => {
        counters.framesIn++;
        latest = frame;
        info.framesIn++;
        fpsIn.tick();
      });
    } finally {
      detector.dispose();
    }
  })().catch((e: Error) => {
    counters.streamErrors++;
    if (!stopped) setState('failed', e.message);
  });

  return {
    id,
    info: snapshot,
    latestJpeg() {
      const frame = latest;
      if (!frame) return Promise.resolve(undefined);
      if (latestJpeg?.index !== frame.index) {
        const jpeg = sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } }).jpeg({ quality: 75 }).toBuffer();
        latestJpeg = { index: frame.index, jpeg };
      }
      return latestJpeg.jpeg;
    },
    subscribe: events.subscribe,
    async stop() {
      if (stopped) return;
      stopped = true;
      await ingest.stop();
      await run;
      counters.drops += ingest.stats().drops;
      setState('stopped');
      events.clear();
      latest = undefined;
    },
  };
}
