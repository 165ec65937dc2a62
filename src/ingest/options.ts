/**
 * openSource's options resolved and checked, and the pure rules its state machine follows: the
 * reconnect delay and the decode configuration of each connection.
 */
import type { DecodeConfig } from './decode.js';
import { defaultFfmpeg } from './ffmpeg.js';
import type { GuardRoute } from './guard.js';
import type { IngestOptions, ReconnectOptions } from './ingest.js';
import type { Source } from './source.js';

const DEFAULTS = {
  maxSide: 640,
  realtime: false,
  loop: false,
  strict: true,
  queueSize: 4,
  rtspTransport: 'tcp' as 'tcp' | 'udp',
  stallTimeoutMs: 5000,
  stopGraceMs: 2000,
};

const RECONNECT_DEFAULTS: ReconnectOptions = { initialDelayMs: 500, maxDelayMs: 10_000, factor: 2, maxAttempts: Infinity };

/** The options with every default filled in. */
export type ResolvedIngestOptions = IngestOptions & typeof DEFAULTS & { live: boolean; ffmpegPath: string };

/** Drops undefined entries, so that `{ ffmpegPath: settings.ffmpegPath }` keeps the default. */
function defined<T extends object>(options: T): T {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as T;
}

const positiveInt = (v: number): boolean => Number.isInteger(v) && v >= 1;

/**
 * The options for `source` with the defaults (live for all but files; the default ffmpeg), and
 * the reconnect policy. Throws on a bad size, rate or queue size.
 */
export function resolveIngestOptions(source: Source, options: IngestOptions): { o: ResolvedIngestOptions; backoff: ReconnectOptions } {
  const o = { ...DEFAULTS, live: source.kind !== 'file', ...defined(options), ffmpegPath: options.ffmpegPath ?? defaultFfmpeg().path };
  const backoff = { ...RECONNECT_DEFAULTS, ...defined(options.reconnect ?? {}) };
  if (!positiveInt(o.queueSize)) throw new Error(`queueSize must be a positive integer (got ${o.queueSize})`);
  if (o.fps !== undefined && !(Number.isFinite(o.fps) && o.fps > 0)) throw new Error(`fps must be a positive number (got ${o.fps})`);
  if (o.size && !(positiveInt(o.size.width) && positiveInt(o.size.height))) throw new Error('size needs a positive integer width and height');
  if (!positiveInt(o.maxSide)) throw new Error(`maxSide must be a positive integer (got ${o.maxSide})`);
  return { o, backoff };
}

/** The wait before reconnect attempt `attempt` (1-based): exponential from the initial delay, capped. */
export function reconnectDelay(attempt: number, backoff: ReconnectOptions): number {
  return Math.min(backoff.maxDelayMs, backoff.initialDelayMs * backoff.factor ** (attempt - 1));
}

/** What one connection's decode process is started with. */
export function decodeConfig(source: Source, o: ResolvedIngestOptions, route: GuardRoute | undefined): DecodeConfig {
  return {
    ffmpegPath: o.ffmpegPath,
    source,
    size: o.size,
    maxSide: o.maxSide,
    fps: o.fps,
    realtime: o.realtime,
    loop: o.loop,
    strict: o.strict,
    rtspTransport: o.rtspTransport,
    route,
  };
}
