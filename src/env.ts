/**
 * The one place that reads process settings. Everything else receives plain values from here,
 * so tests can pass their own settings instead of mutating process.env.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackendName } from './backends/index.js';
import type { EngineName } from './backends/onnx.js';
import { createAddressPolicy, type NetworkPolicy } from './ingest/policy.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface Settings {
  /** Forced tensor backend; undefined means "best available". */
  backend?: BackendName;
  /**
   * Forced engine of the model's extractor (ARBEX_ENGINE=onnx|tfjs); undefined: onnx
   * (onnxruntime-node) for a cnn extractor when it loads, else tfjs. The head runs on tfjs.
   */
  engine?: EngineName;
  port: number;
  host: string;
  /** Bearer token; when set, the API and WebSocket require it. */
  token?: string;
  /** ffmpeg binary (FFMPEG_PATH); unset: a system ffmpeg newer than the bundled one, else the bundled one (src/ingest/ffmpeg.ts). */
  ffmpegPath?: string;
  /** Folders from which local files may be read as sources. */
  mediaDirs: string[];
  /** Model directory (config.json + weights) used by default. */
  weightsDir: string;
  /** Host names the server answers to besides IP addresses and localhost (a reverse proxy's name). */
  allowedHosts: string[];
  /** Origins besides the server's own that may change state and open WebSockets. */
  allowedOrigins: string[];
  /** Listen on a non-loopback address without a token all the same. */
  insecureNoToken: boolean;
  /** Which addresses network sources may reach (loopback, link-local and metadata addresses are denied by default). */
  network: NetworkPolicy;
  /** The server's jobs, their inputs and outputs; kept across restarts. */
  dataDir: string;
  /** Caps on what clients may make the server hold. */
  limits: Limits;
}

/** Caps on what clients may make the server hold; every one answers 413 or 429 when reached. */
export interface Limits {
  /** Streams open at once (any state but stopped). */
  maxStreams: number;
  /** Consecutive failed connection attempts before a stream gives up (state `failed`). */
  streamRetries: number;
  /** Largest video upload in bytes. */
  maxUploadBytes: number;
  /** Jobs waiting to run. */
  maxQueuedJobs: number;
  /** Bytes of uploaded video held for unfinished jobs and uploads in progress, together. */
  maxQueuedUploadBytes: number;
  /** Frames one job may label (checked on the probe's estimate, then while it runs). */
  maxJobFrames: number;
  /** Seconds of video one job may label. */
  maxJobSeconds: number;
  /** Width x height of a job's video frames. */
  maxFramePixels: number;
  /** Finished jobs kept (the oldest beyond are deleted with their labels). */
  keepJobs: number;
  /** Milliseconds a finished job is kept. */
  keepJobsMs: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_LIMITS: Limits = {
  maxStreams: 16,
  streamRetries: 20,
  maxUploadBytes: 512 * MiB,
  maxQueuedJobs: 32,
  maxQueuedUploadBytes: 4096 * MiB,
  maxJobFrames: 270_000,
  maxJobSeconds: 3 * 3600,
  maxFramePixels: 7680 * 4320,
  keepJobs: 500,
  keepJobsMs: 30 * 24 * 3600 * 1000,
};

function parseBackend(v: string | undefined): BackendName | undefined {
  if (v === undefined || v === '') return undefined;
  if (v === 'tensorflow' || v === 'wasm' || v === 'cpu') return v;
  throw new Error(`ARBEX_BACKEND must be one of tensorflow, wasm, cpu (got "${v}")`);
}

function parseEngine(v: string | undefined): EngineName | undefined {
  if (v === undefined || v === '') return undefined;
  if (v === 'onnx' || v === 'tfjs') return v;
  throw new Error(`ARBEX_ENGINE must be one of onnx, tfjs (got "${v}")`);
}

function parsePort(v: string | undefined): number {
  if (v === undefined || v === '') return 8080;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`PORT must be an integer 0-65535 (got "${v}")`);
  return n;
}

/** A whole number of `scale`-sized units (MiB, days) from the environment, in base units. */
function parseCount(name: string, v: string | undefined, fallback: number, scale = 1): number {
  if (v === undefined || v === '') return fallback * scale;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number (got "${v}")`);
  return n * scale;
}

function readLimits(env: NodeJS.ProcessEnv): Limits {
  const d = DEFAULT_LIMITS;
  return {
    ...d,
    maxStreams: parseCount('ARBEX_MAX_STREAMS', env.ARBEX_MAX_STREAMS, d.maxStreams),
    streamRetries: parseCount('ARBEX_STREAM_RETRIES', env.ARBEX_STREAM_RETRIES, d.streamRetries),
    maxUploadBytes: parseCount('ARBEX_MAX_UPLOAD_MB', env.ARBEX_MAX_UPLOAD_MB, d.maxUploadBytes / MiB, MiB),
    maxQueuedJobs: parseCount('ARBEX_MAX_QUEUED_JOBS', env.ARBEX_MAX_QUEUED_JOBS, d.maxQueuedJobs),
    maxQueuedUploadBytes: parseCount('ARBEX_MAX_QUEUED_UPLOAD_MB', env.ARBEX_MAX_QUEUED_UPLOAD_MB, d.maxQueuedUploadBytes / MiB, MiB),
    maxJobFrames: parseCount('ARBEX_MAX_JOB_FRAMES', env.ARBEX_MAX_JOB_FRAMES, d.maxJobFrames),
    maxJobSeconds: parseCount('ARBEX_MAX_JOB_SECONDS', env.ARBEX_MAX_JOB_SECONDS, d.maxJobSeconds),
    keepJobs: parseCount('ARBEX_KEEP_JOBS', env.ARBEX_KEEP_JOBS, d.keepJobs),
    keepJobsMs: parseCount('ARBEX_KEEP_JOBS_DAYS', env.ARBEX_KEEP_JOBS_DAYS, d.keepJobsMs / 86_400_000, 86_400_000),
  };
}

function parseFlag(name: string, v: string | undefined): boolean {
  if (v === undefined || /^(|0|false|no)$/i.test(v)) return false;
  if (/^(1|true|yes)$/i.test(v)) return true;
  throw new Error(`${name} must be 1 or 0 (got "${v}")`);
}

/** A comma- or space-separated list. */
const parseList = (v: string | undefined): string[] => (v ?? '').split(/[\s,]+/).filter(Boolean);

function readNetworkPolicy(env: NodeJS.ProcessEnv): NetworkPolicy {
  const network = {
    allowLoopback: parseFlag('ARBEX_SOURCE_ALLOW_LOOPBACK', env.ARBEX_SOURCE_ALLOW_LOOPBACK),
    allow: parseList(env.ARBEX_SOURCE_ALLOW),
    deny: parseList(env.ARBEX_SOURCE_DENY),
  };
  createAddressPolicy(network); // throws on a malformed range, so that a typo stops the start
  return network;
}

/** Reads settings from an environment (process.env by default). */
export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  return {
    backend: parseBackend(env.ARBEX_BACKEND),
    engine: parseEngine(env.ARBEX_ENGINE),
    port: parsePort(env.PORT),
    host: env.HOST || '127.0.0.1',
    token: env.ARBEX_TOKEN || undefined,
    ffmpegPath: env.FFMPEG_PATH || undefined,
    mediaDirs: (env.ARBEX_MEDIA_DIRS || path.join(ROOT, 'media'))
      .split(path.delimiter)
      .filter(Boolean)
      .map((d) => path.resolve(d)),
    weightsDir: path.resolve(env.ARBEX_WEIGHTS || path.join(ROOT, 'weights', 'fer')),
    allowedHosts: parseList(env.ARBEX_ALLOWED_HOSTS),
    allowedOrigins: parseList(env.ARBEX_ALLOWED_ORIGINS),
    insecureNoToken: parseFlag('ARBEX_INSECURE_NO_TOKEN', env.ARBEX_INSECURE_NO_TOKEN),
    network: readNetworkPolicy(env),
    dataDir: path.resolve(env.ARBEX_DATA_DIR || path.join(ROOT, 'data', 'server')),
    limits: readLimits(env),
  };
}
