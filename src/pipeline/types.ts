/** Shapes that flow from ingest through the pipeline to the server, CLI and evaluation. */

import type { FrameOutput, StreamInfo, StreamState } from './schemas.js';
import type { SmoothingSpec } from './smooth/spec.js';

export type { Frame } from '../ingest/index.js';
export type { SmoothingSpec };

export type { Box, FaceOutput, FrameOutput, Landmarks5, StreamInfo, StreamState } from './schemas.js';

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

/**
 * What the engine tells its listeners about every stream, so that nobody needs to poll it:
 * - output: a frame's predictions;
 * - stream: a stream was opened or changed state (`error` says why, on that change), or its
 *   counters moved (at most once a second while frames flow);
 * - removed: a stream left the list (deleted, or the oldest finished one beyond the cap).
 */
export type EngineEvent =
  | { type: 'output'; output: FrameOutput }
  | { type: 'stream'; info: StreamInfo; error?: string }
  | { type: 'removed'; stream: string };

export interface StreamHandle {
  readonly id: string;
  info(): StreamInfo;
  /** The latest decoded frame as JPEG (for the dashboard), or undefined before the first. */
  latestJpeg(): Promise<Buffer | undefined>;
  /** Listens to outputs and state changes; returns the function that stops listening. */
  subscribe(listener: (event: StreamEvent) => void): () => void;
  /** Stops decoding, kills ffmpeg and frees everything; idempotent. The stream stays listed, `stopped`, until removed. */
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
  /** Every listed stream, running or finished (ended, failed, stopped), oldest first. */
  streams(): StreamHandle[];
  /** Stops a stream if it runs and takes it off the list; false for an unknown id. */
  removeStream(id: string): Promise<boolean>;
  /** Listens to every stream's events; returns the function that stops listening. */
  subscribe(listener: (event: EngineEvent) => void): () => void;
  /** Labels a recorded video frame by frame, in order, every frame (files are never dropped). */
  labelVideo(file: string, options?: LabelOptions): AsyncIterable<FrameOutput>;
  /** Counters for /metrics. */
  metrics(): Record<string, number>;
  close(): Promise<void>;
}
