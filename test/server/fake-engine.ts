/**
 * A small in-memory Engine for the server's tests: streams emit synthetic FrameOutputs on a timer,
 * and "videos" are text files `FAKEVIDEO <frames>` labelled frame by frame (`FAKEVIDEO <frames>
 * FAILAT <n>` fails at frame n). Sources starting with `bad:` are refused, as the real engine
 * refuses sources it cannot open. `probeFake` is the matching probe.
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { ProbeError, type VideoProbe } from '../../src/ingest/probe.js';
import { createEmitter } from '../../src/pipeline/events.js';
import type { Engine, EngineEvent, FaceOutput, FrameOutput, LabelOptions, StreamEvent, StreamHandle, StreamInfo, StreamOptions } from '../../src/pipeline/types.js';

export interface FakeEngineOptions {
  classes?: string[];
  /** Milliseconds between frames of a live stream. */
  intervalMs?: number;
  /** Faces per frame (every 10th frame has none). */
  facesPerFrame?: number;
  /** Milliseconds per frame when labelling a video. */
  labelDelayMs?: number;
}

const CLASSES = ['Neutral', 'Anger', 'Disgust', 'Fear', 'Happiness', 'Sadness', 'Surprise'];

function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function argmax(p: number[]): number {
  return p.reduce((best, v, i) => (v > p[best]! ? i : best), 0);
}

/** Deterministic, slowly changing distributions so bars and timelines visibly move. */
export function fakeOutput(stream: string, frame: number, classes: readonly string[], facesPerFrame: number): FrameOutput {
  const faces = frame % 10 === 9 ? 0 : facesPerFrame;
  const results: FaceOutput[] = [];
  for (let t = 0; t < faces; t++) {
    const phase = frame / 15 + t * 2;
    const primary = softmax(classes.map((_, i) => 2.5 * Math.sin(phase + i)));
    const corrected = softmax(classes.map((_, i) => 3 * Math.sin(phase + i + 0.3)));
    const smoothed = softmax(classes.map((_, i) => 2 * Math.sin(phase + i)));
    const x = 40 + t * 150 + 20 * Math.sin(frame / 20);
    results.push({
      track: t + 1,
      box: { x, y: 60, w: 110, h: 130 },
      landmarks5: [[x + 30, 100], [x + 80, 100], [x + 55, 125], [x + 35, 160], [x + 75, 160]],
      primary,
      corrected,
      confidence: 1 - (Math.sin(phase) + 1) / 4,
      label: classes[argmax(corrected)]!,
      smoothed,
      smoothedLabel: classes[argmax(smoothed)]!,
    });
  }
  return { stream, frame, ptsMs: frame * 40, faces, results };
}

const FAKE = /^FAKEVIDEO (\d+)(?: FAILAT (\d+))?/;

/** Probes a fake video: 320x240 at 25 fps. */
export async function probeFake(file: string, name: string): Promise<VideoProbe> {
  const m = FAKE.exec((await readFile(file)).subarray(0, 64).toString('latin1'));
  if (!m) throw new ProbeError(`not a video: ${name}: Invalid data found when processing input`);
  const frames = Number(m[1]);
  return { container: 'fake', codec: 'fake', width: 320, height: 240, fps: 25, durationSec: frames / 25, frames };
}

async function testCard(width: number, height: number, shade: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      raw[o] = (x * 255) / width;
      raw[o + 1] = (y * 255) / height;
      raw[o + 2] = shade;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg().toBuffer();
}

export interface FakeEngine extends Engine {
  /** Sources passed to openStream, in order. */
  readonly opened: string[];
  /** Tells the engine's listeners (the hub) an event, as if a stream had. */
  emit(event: EngineEvent): void;
  /** Listeners subscribed to single streams, over all streams (the hub listens to the engine as a whole). */
  listenerCount(): number;
}

export function createFakeEngine(options: FakeEngineOptions = {}): FakeEngine {
  const { classes, intervalMs, facesPerFrame, labelDelayMs } = { classes: CLASSES, intervalMs: 40, facesPerFrame: 2, labelDelayMs: 1, ...options };
  const handles = new Map<string, StreamHandle & { listeners: Set<(e: StreamEvent) => void> }>();
  const opened: string[] = [];
  const events = createEmitter<EngineEvent>((e) => console.error(e));
  let next = 1;
  let batches = 0;

  const openStream = (source: string, opts: StreamOptions = {}): StreamHandle => {
    if (source.startsWith('bad:')) throw new Error(`refused source ${source}: unsupported scheme`);
    opened.push(source);
    const id = `s${next++}`;
    const listeners = new Set<(e: StreamEvent) => void>();
    const info: StreamInfo = {
      id,
      name: opts.name ?? id,
      source,
      state: 'connecting',
      fpsIn: 0,
      fpsOut: 0,
      framesIn: 0,
      framesOut: 0,
      drops: 0,
      faces: 0,
      startedAt: new Date().toISOString(),
    };
    const emit = (e: StreamEvent) => {
      for (const l of listeners) l(e);
      if (e.type === 'output') events.emit(e);
    };
    const setState = (state: StreamInfo['state']) => {
      info.state = state;
      emit({ type: 'state', stream: id, state });
      events.emit({ type: 'stream', info: { ...info } });
    };
    let jpeg: Buffer | undefined;
    const card = testCard(320, 240, (next * 60) % 255).then((b) => (jpeg = b));
    const timer = setInterval(() => {
      if (info.state === 'connecting') setState('live');
      const out = fakeOutput(id, info.framesOut, classes, facesPerFrame);
      info.framesIn++;
      info.framesOut++;
      info.faces = out.faces;
      info.fpsIn = info.fpsOut = 1000 / intervalMs;
      batches++;
      emit({ type: 'output', output: out });
    }, intervalMs);
    const handle = {
      id,
      listeners,
      info: () => ({ ...info }),
      latestJpeg: async () => (info.framesIn > 0 ? (await card, jpeg) : undefined),
      subscribe(listener: (e: StreamEvent) => void) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      async stop() {
        if (info.state === 'stopped') return;
        clearInterval(timer);
        setState('stopped');
        listeners.clear();
      },
    };
    handles.set(id, handle);
    events.emit({ type: 'stream', info: { ...info } });
    return handle;
  };

  async function* labelVideo(file: string, opts: LabelOptions = {}): AsyncIterable<FrameOutput> {
    const text = (await readFile(file)).subarray(0, 64).toString('latin1');
    const m = FAKE.exec(text);
    if (!m) throw new Error(`cannot decode ${file}: not a video`);
    const total = Number(m[1]);
    const failAt = m[2] === undefined ? Infinity : Number(m[2]);
    for (let frame = 0; frame < total; frame++) {
      if (opts.signal?.aborted) throw new DOMException('labelling cancelled', 'AbortError');
      if (frame === failAt) throw new Error(`cannot decode ${file}: corrupt frame ${frame}`);
      await new Promise((r) => setTimeout(r, labelDelayMs));
      yield fakeOutput('file', frame, classes, 1);
      opts.onProgress?.(frame + 1, total);
    }
  }

  return {
    classes,
    opened,
    openStream,
    streams: () => [...handles.values()],
    async removeStream(id) {
      const h = handles.get(id);
      if (!h) return false;
      await h.stop();
      handles.delete(id);
      events.emit({ type: 'removed', stream: id });
      return true;
    },
    subscribe: events.subscribe,
    emit: events.emit,
    labelVideo,
    metrics: () => ({ batches_total: batches, batch_size_mean: 1.5, inference_ms_mean: 12.5, queue_depth: 0 }),
    listenerCount: () => [...handles.values()].reduce((n, h) => n + h.listeners.size, 0),
    async close() {
      await Promise.all([...handles.values()].map((h) => h.stop()));
    },
  };
}
