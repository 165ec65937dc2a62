/** Shapes that flow from ingest through the pipeline to the server, CLI and evaluation. */

import type { SmoothingSpec } from './smooth/spec.js';

export type { Frame } from '../ingest/index.js';
export type { SmoothingSpec };

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Five alignment points in image pixels: left eye, right eye, nose tip, left mouth, right mouth. */
export type Landmarks5 = [number, number][];

export interface FaceOutput {
  track: number;
  box: Box;
  landmarks5: Landmarks5;
  primary: number[];
  corrected: number[];
  confidence: number;
  label: string;
  smoothed: number[];
  smoothedLabel: string;
}

/** Per frame: every face found (faces: 0 and an empty list when there is none). */
export interface FrameOutput {
  stream: string;
  frame: number;
  ptsMs: number;
  faces: number;
  results: FaceOutput[];
}


export type StreamState = 'connecting' | 'live' | 'stalled' | 'reconnecting' | 'ended' | 'failed' | 'stopped';

export interface StreamInfo {
  id: string;
  name: string;
  source: string;
  state: StreamState;
  /** Frames per second decoded / predicted, over the last few seconds. */
  fpsIn: number;
  fpsOut: number;
  framesIn: number;
  framesOut: number;
  /** Frames dropped because the pipeline was behind (live sources only). */
  drops: number;
  /** Faces in the latest frame. */
  faces: number;
  lastError?: string;
  startedAt: string;
}

export interface StreamOptions {
  name?: string;
  /** Output frame rate; undefined = the source's own. */
  fps?: number;
  smoothing?: SmoothingSpec;
  /** Loop a file forever as if it were live (the demo stream). */
  loop?: boolean;
}

export type StreamEvent =
  | { type: 'output'; output: FrameOutput }
  | { type: 'state'; stream: string; state: StreamState; error?: string };

export interface StreamHandle {
  readonly id: string;
  info(): StreamInfo;
  /** The latest decoded frame as JPEG (for the dashboard), or undefined before the first. */
  latestJpeg(): Promise<Buffer | undefined>;
  /** Listens to outputs and state changes; returns the function that stops listening. */
  subscribe(listener: (event: StreamEvent) => void): () => void;
  /** Stops decoding, kills ffmpeg and frees everything; idempotent. */
  stop(): Promise<void>;
}

export interface LabelOptions {
  smoothing?: SmoothingSpec;
  detectEvery?: number;
  signal?: AbortSignal;
  /** Called as frames complete; total is the frame count when known. */
  onProgress?: (done: number, total: number | undefined) => void;
}

/** The running product: one model, one micro-batcher and one detector shared by all streams. */
export interface Engine {
  readonly classes: readonly string[];
  /** Opens a live or file stream; throws a clear error at once for a refused source. */
  openStream(source: string, options?: StreamOptions): StreamHandle;
  streams(): StreamHandle[];
  /** Labels a recorded video frame by frame, in order, every frame (files are never dropped). */
  labelVideo(file: string, options?: LabelOptions): AsyncIterable<FrameOutput>;
  /** Counters for /metrics. */
  metrics(): Record<string, number>;
  close(): Promise<void>;
}
