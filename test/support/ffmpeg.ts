/** ffmpeg in tests: the bundled binary, clips made at test time, and the ffmpeg processes a test left running. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { FACE_PAN } from '../fixtures/media.js';

const run = promisify(execFile);

/** The bundled ffmpeg (@ffmpeg-installer/ffmpeg). */
export const FFMPEG = ffmpegInstaller.path;

/** Encodes `file` as H.264 from ffmpeg input arguments (`-i ...`, filters, `-t`), quietly, overwriting. */
export async function encodeClip(file: string, args: string[], encode: string[] = ['-pix_fmt', 'yuv420p']): Promise<string> {
  await run(FFMPEG, ['-y', '-hide_banner', '-loglevel', 'error', '-nostdin', ...args, '-c:v', 'libx264', ...encode, '-an', file]);
  return file;
}

/** A 160x120 H.264 clip (baseline, keyframe every second) of `seconds` length from face_pan.mp4. */
export function facePanClip(file: string, seconds: number): Promise<string> {
  return encodeClip(file, ['-stream_loop', '-1', '-i', FACE_PAN, '-t', String(seconds), '-vf', 'scale=160:120'], [
    '-preset', 'ultrafast', '-profile:v', 'baseline', '-g', '25', '-bf', '0',
  ]);
}

/**
 * Pids of the ffmpeg processes whose parent is `parent` (default: this test process), optionally
 * only those whose command line contains `match`.
 */
export async function ffmpegChildren(match?: string, parent = process.pid): Promise<number[]> {
  const { stdout } = await run('ps', ['-o', 'pid=,comm=,args=', '--ppid', String(parent)]).catch(() => ({ stdout: '' }));
  return stdout
    .split('\n')
    .map((l) => /^\s*(\d+)\s+(\S+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && m[2] === 'ffmpeg' && (match === undefined || m[3].includes(match)))
    .map((m) => Number(m[1]));
}
