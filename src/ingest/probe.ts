/**
 * What a video file holds, read before it is queued for labelling: `ffmpeg -i` with no output
 * reads the container's header and lists its streams on stderr. The same demuxer whitelist as
 * decoding applies, so a file that probes is one that decoding will open.
 */
import { spawn } from 'node:child_process';
import { probeArgs } from './command.js';
import { DURATION, parseInputVideo } from './stderr.js';

export interface VideoProbe {
  /** The demuxer ffmpeg chose, e.g. `mov,mp4,m4a,3gp,3g2,mj2`. */
  container: string;
  codec: string;
  width: number;
  height: number;
  fps?: number;
  durationSec?: number;
  /** durationSec x fps, when both are known: an estimate, the container may lie. */
  frames?: number;
}

export interface ProbeOptions {
  ffmpegPath: string;
  /** The name used in messages instead of the path (uploads are read through /proc/PID/fd/N). */
  name?: string;
  timeoutMs?: number;
}

/** The file is not a video ffmpeg can open (its message says why). */
export class ProbeError extends Error {
  override name = 'ProbeError';
}

const MAX_STDERR = 256 * 1024;
const INPUT = /^Input #0, (.+?), from /;

/** Parses `ffmpeg -i`'s stderr; undefined when it names no video stream. */
export function parseProbe(stderr: string): VideoProbe | undefined {
  let container: string | undefined;
  let durationSec: number | undefined;
  for (const line of stderr.split(/\r?\n/)) {
    const input = INPUT.exec(line);
    if (input) container = input[1];
    const d = DURATION.exec(line);
    if (d && durationSec === undefined) durationSec = Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3]);
    const video = container !== undefined ? parseInputVideo(line) : undefined;
    if (video) {
      const frames = durationSec !== undefined && video.fps ? Math.round(durationSec * video.fps) : undefined;
      return { container: container!, codec: video.codec, width: video.width, height: video.height, fps: video.fps, durationSec, frames };
    }
  }
  return undefined;
}

/**
 * Probes a local file. Rejects with a ProbeError when it is not a video.
 *
 * @example
 * const { container, durationSec, width, height } = await probeVideo('clip.mp4', { ffmpegPath });
 */
export function probeVideo(file: string, options: ProbeOptions): Promise<VideoProbe> {
  const { ffmpegPath, name, timeoutMs } = { name: file, timeoutMs: 15_000, ...options };
  const args = probeArgs(file);
  return new Promise((resolve, reject) => {
    const proc = spawn(ffmpegPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk: string) => {
      if (stderr.length < MAX_STDERR) stderr += chunk;
    });
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`could not run ffmpeg (${ffmpegPath}): ${e.message}`));
    });
    proc.on('close', (_code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') return reject(new ProbeError(`${name}: reading its header took over ${timeoutMs} ms`));
      const probe = parseProbe(stderr);
      if (probe) return resolve(probe);
      const lines = stderr.split(/\r?\n/);
      if (lines.some((l) => INPUT.test(l))) return reject(new ProbeError(`not a video: ${name} has no video stream`));
      const why = lines
        .map((l) => l.split(file).join(name).replace(/ @ 0x[0-9a-f]+\]/, ']').trim())
        .filter((l) => l && !/^At least one output file/.test(l))
        .slice(-1)[0];
      reject(new ProbeError(`not a video: ${why ?? 'ffmpeg could not read it'}`));
    });
  });
}
