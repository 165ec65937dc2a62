/**
 * The decisions of openSource's state machine as pure functions: what follows when a decode
 * process exits and when a live source stalls. ingest.ts carries them out (timers, processes,
 * state events).
 */
import { SourceError } from './source.js';

/** Where the source goes next. */
export type Next = { to: 'failed'; error: Error; detail?: string } | { to: 'reconnecting'; error: Error; detail?: string } | { to: 'ended' };

export interface ExitFacts {
  live: boolean;
  /** A network source, reached through a guard. */
  guarded: boolean;
  /** What the guard saw during this connection. */
  outcome?: { refusal?: string; failure?: string };
  /** This connection delivered at least one frame. */
  hadFrames: boolean;
  /** The decode process's error, if it failed. */
  error?: Error;
  /** Frames received over the source's whole life. */
  framesIn: number;
  /** The one message for a network source that could not be reached. */
  unreachable: string;
  /** The source as given, for messages. */
  input: string;
}

/**
 * After a decode process exits: a refused destination fails; a guarded source that gave no frame
 * reports the uniform `unreachable` (the real reason in `detail`); live sources reconnect; files
 * end, or fail on an error or when no frame was decoded at all.
 */
export function afterExit(f: ExitFacts): Next {
  if (f.outcome?.refusal) return { to: 'failed', error: new SourceError(f.outcome.refusal) };
  let error = f.error;
  let detail: string | undefined;
  if (f.guarded && !f.hadFrames) {
    detail = f.outcome?.failure ?? error?.message ?? 'stream ended before any frame';
    error = new Error(f.unreachable);
  }
  if (f.live) return { to: 'reconnecting', error: error ?? new Error(f.hadFrames ? 'stream ended' : 'stream ended before any frame'), detail };
  if (error) return { to: 'failed', error, detail };
  if (f.framesIn === 0) return { to: 'failed', error: new Error(`no video frames could be decoded from ${f.input}`) };
  return { to: 'ended' };
}

export interface StallFacts {
  stallTimeoutMs: number;
  guarded: boolean;
  hadFrames: boolean;
  /** A destination the guard refused during this connection. */
  refusal?: string;
  unreachable: string;
}

/**
 * When a live source gave no frame for `stallTimeoutMs`: the `stalled` event's error and detail,
 * and what follows (fail on a refusal, else reconnect).
 */
export function afterStall(f: StallFacts): { stalled: { error: string; detail?: string }; next: Next } {
  const reason = `no frame for ${f.stallTimeoutMs} ms`;
  const never = f.guarded && !f.hadFrames;
  const stalled = never ? { error: f.unreachable, detail: reason } : { error: reason };
  if (f.refusal) return { stalled, next: { to: 'failed', error: new SourceError(f.refusal) } };
  return { stalled, next: { to: 'reconnecting', error: new Error(never ? f.unreachable : reason), detail: never ? reason : undefined } };
}
