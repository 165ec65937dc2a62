/**
 * The one place that reads process settings. Everything else receives plain values from here,
 * so tests can pass their own settings instead of mutating process.env.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface Settings {
  /** Forced tensor backend; undefined means "best available". */
  backend?: BackendName;
  port: number;
  host: string;
  /** Bearer token; when set, the API and WebSocket require it. */
  token?: string;
  /** ffmpeg binary; defaults to the one shipped by @ffmpeg-installer/ffmpeg. */
  ffmpegPath?: string;
  /** Folders from which local files may be read as sources. */
  mediaDirs: string[];
  /** Model directory (config.json + weights) used by default. */
  weightsDir: string;
}

function parseBackend(v: string | undefined): BackendName | undefined {
  if (v === undefined || v === '') return undefined;
  if (v === 'tensorflow' || v === 'wasm' || v === 'cpu') return v;
  throw new Error(`ARBEX_BACKEND must be one of tensorflow, wasm, cpu (got "${v}")`);
}

function parsePort(v: string | undefined): number {
  if (v === undefined || v === '') return 8080;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`PORT must be an integer 0-65535 (got "${v}")`);
  return n;
}

/** Reads settings from an environment (process.env by default). */
export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  return {
    backend: parseBackend(env.ARBEX_BACKEND),
    port: parsePort(env.PORT),
    host: env.HOST || '127.0.0.1',
    token: env.ARBEX_TOKEN || undefined,
    ffmpegPath: env.FFMPEG_PATH || undefined,
    mediaDirs: (env.ARBEX_MEDIA_DIRS || path.join(ROOT, 'media'))
      .split(path.delimiter)
      .filter(Boolean)
      .map((d) => path.resolve(d)),
    weightsDir: path.resolve(env.ARBEX_WEIGHTS || path.join(ROOT, 'weights', 'demo')),
  };
}
