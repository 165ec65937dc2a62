/**
 * Which ffmpeg runs. ffmpeg parses untrusted uploads, so the newest available build is the one
 * to run: `FFMPEG_PATH` when set; else the system's `ffmpeg` (on PATH) when it is a release newer
 * than the build bundled by `@ffmpeg-installer/ffmpeg` (a git snapshot of 2018-12-10, between
 * ffmpeg 4.1 and 4.2); else the bundled one.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';

export interface FfmpegChoice {
  path: string;
  /** What `ffmpeg -version` says, e.g. `5.1.6-0+deb12u1`. */
  version: string;
  origin: 'FFMPEG_PATH' | 'system' | 'bundled';
  /** Why this one, in a few words. */
  reason: string;
}

export interface ChooseFfmpegOptions {
  /** An explicit binary (`FFMPEG_PATH`): always used. */
  override?: string;
  /** Folders searched for a system `ffmpeg` (default: PATH). */
  searchPath?: string;
  /** The bundled binary (default: @ffmpeg-installer/ffmpeg's). */
  bundled?: { path: string; version: string };
}

/** The first release after the bundled 2018-12-10 snapshot. */
const NEWER_THAN_BUNDLED: [number, number] = [4, 2];

/** The version word of `ffmpeg -version`'s first line, or undefined when it does not run. */
export function ffmpegVersion(file: string): string | undefined {
  try {
    const out = execFileSync(file, ['-hide_banner', '-version'], { timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 20 });
    return /^ffmpeg version (\S+)/.exec(out.toString('utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** Whether a version string names a release at least 4.2 (`5.1.6-0+deb12u1`, `n6.1`, `7.0.2-static`). */
export function isNewerRelease(version: string): boolean {
  const m = /^n?(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > NEWER_THAN_BUNDLED[0] || (major === NEWER_THAN_BUNDLED[0] && minor >= NEWER_THAN_BUNDLED[1]);
}

function onPath(searchPath: string): string | undefined {
  for (const dir of searchPath.split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, 'ffmpeg');
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Picks the ffmpeg binary; runs `ffmpeg -version` once per candidate.
 *
 * @example
 * const ffmpeg = chooseFfmpeg({ override: readSettings().ffmpegPath });
 * console.log(`${ffmpeg.path} ${ffmpeg.version} (${ffmpeg.reason})`);
 */
export function chooseFfmpeg(options: ChooseFfmpegOptions = {}): FfmpegChoice {
  const { override, searchPath, bundled } = { searchPath: process.env.PATH ?? '', bundled: ffmpegInstaller, ...options };
  if (override) {
    return { path: override, version: ffmpegVersion(override) ?? 'unknown (it did not run)', origin: 'FFMPEG_PATH', reason: 'set by FFMPEG_PATH' };
  }
  const bundledChoice = (reason: string): FfmpegChoice => ({ path: bundled.path, version: bundled.version, origin: 'bundled', reason });
  const system = onPath(searchPath);
  if (!system) return bundledChoice('no ffmpeg on PATH');
  const version = ffmpegVersion(system);
  if (version === undefined) return bundledChoice(`${system} does not run`);
  if (!isNewerRelease(version)) return bundledChoice(`${system} is ${version}, not a release newer than the bundled build`);
  return { path: system, version, origin: 'system', reason: `newer than the bundled build (${bundled.version})` };
}

let cached: FfmpegChoice | undefined;

/** `chooseFfmpeg()` without an override, computed once per process (ingest's default binary). */
export function defaultFfmpeg(): FfmpegChoice {
  return (cached ??= chooseFfmpeg());
}
