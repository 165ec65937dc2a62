/**
 * One ffmpeg decode process: a vetted source in, raw RGB frames out, each tagged with its source
 * frame number and timestamp.
 *
 * Why no separate probe: `@ffmpeg-installer/ffmpeg` ships no ffprobe, and a probe would open a
 * live stream twice. Instead the decode process describes itself on stderr:
 * - the input's `Stream #0:0: Video: ...` line gives the native codec, size and rate;
 * - a `showinfo` filter placed FIRST in the chain logs every decoded frame (`n` = source frame
 *   number, `pts`), before any fps selection;
 * - a `showinfo` placed LAST logs every frame that is written to stdout, with its final size.
 * Matching the two by pts gives each output frame its source index even when `select` skips
 * frames, and the last one's size says how many stdout bytes make that frame.
 * ffmpeg logs a frame before writing it, but stderr and stdout are separate pipes, so bytes that
 * arrive ahead of their log line wait for it.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import ffmpeg from 'fluent-ffmpeg';
import type { GuardRoute } from './guard.js';
import type { Source } from './source.js';

/** What the source itself reports (before scaling or rate changes). */
export interface SourceInfo {
  codec: string;
  width: number;
  height: number;
  /** Nominal frame rate when ffmpeg reports one. */
  fps?: number;
  /** Container duration in seconds (files), when ffmpeg reports one. */
  durationSec?: number;
}

export interface DecodedFrame {
  /** Frame number among the frames this process decoded (0-based). */
  n: number;
  /** Presentation time in seconds as ffmpeg reports it (start of source = 0). */
  ptsSec: number;
  width: number;
  height: number;
  data: Uint8Array;
}

export interface DecodeConfig {
  ffmpegPath: string;
  source: Source;
  /** Exact output size; otherwise keep aspect within `maxSide` (never upscaling). */
  size?: { width: number; height: number };
  maxSide: number;
  /** Output rate; undefined keeps every frame. */
  fps?: number;
  /** Files: read at native speed (`-re`), like a camera would deliver them. */
  realtime: boolean;
  /** Files: loop forever. */
  loop: boolean;
  /** Files: stop with an error on corrupt data (`-xerror`) instead of skipping it. */
  strict: boolean;
  rtspTransport: 'tcp' | 'udp';
  /** Network sources: the URL to open and the proxy to connect through, from the source's guard (guard.ts). */
  route?: GuardRoute;
}

export interface DecodeHandlers {
  onInfo(info: SourceInfo): void;
  onFrame(frame: DecodedFrame): void;
  /** Called once, after the process has exited and every frame it wrote was delivered. */
  onExit(error: Error | undefined): void;
}

export interface DecodeSession {
  /** Stops reading stdout, so ffmpeg blocks on its next write (files: back-pressure). */
  pause(): void;
  resume(): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  kill(graceMs: number): Promise<void>;
}

// Demuxers a local file may use. Leaving out hls and concat matters: both are auto-detected
// from content and would open other files named inside the one we vetted. The *_pipe image
// demuxers read one still image from the one file (image2, which expands file patterns, is out).
export const FILE_FORMATS = [
  'mov,mp4,m4a,3gp,3g2,mj2', 'matroska,webm', 'avi', 'mpegts', 'mpeg', 'flv', 'asf', 'ogg',
  'h264', 'hevc', 'm4v', 'mjpeg', 'mpjpeg', 'gif', 'yuv4mpegpipe',
  'png_pipe', 'jpeg_pipe', 'bmp_pipe', 'webp_pipe',
].join(',');

/** ffmpeg picks image2 for these extensions by name; name the one-image demuxer instead. */
const STILL_IMAGE_FORMATS: Record<string, string> = { '.jpg': 'jpeg_pipe', '.jpeg': 'jpeg_pipe', '.png': 'png_pipe', '.bmp': 'bmp_pipe', '.webp': 'webp_pipe' };

function stillImageFormat(file: string): string[] {
  const format = STILL_IMAGE_FORMATS[path.extname(file).toLowerCase()];
  return format ? ['-f', format] : [];
}

function inputOptions(c: DecodeConfig): string[] {
  const common = ['-hide_banner', '-nostdin', '-nostats'];
  switch (c.source.kind) {
    case 'file':
      return [
        ...common,
        '-protocol_whitelist', 'file',
        '-format_whitelist', FILE_FORMATS,
        ...stillImageFormat(c.source.path),
        ...(c.strict ? ['-xerror'] : []),
        ...(c.realtime ? ['-re'] : []),
        ...(c.loop ? ['-stream_loop', '-1'] : []),
      ];
    case 'rtsp':
      return [...common, '-protocol_whitelist', 'rtsp,rtsps,rtp,srtp,udp,tcp,tls,httpproxy', '-rtsp_transport', c.rtspTransport];
    case 'http':
      // Only network protocols: an HLS playlist must not be able to point at local files.
      return [...common, '-protocol_whitelist', 'http,https,tls,tcp,crypto,httpproxy'];
    case 'v4l2':
      return [...common, '-f', 'v4l2'];
  }
}

function inputTarget(source: Source): string {
  switch (source.kind) {
    case 'file':
      return source.path;
    case 'rtsp':
    case 'http':
      return source.url;
    case 'v4l2':
      return source.device;
  }
}

/** The filter chain; returns it with the instance index of the last showinfo. */
function filterChain(c: DecodeConfig): { chain: string; lastShowinfo: number } {
  const filters = ['showinfo'];
  if (c.fps !== undefined) {
    // Keep the first frame of each 1/fps slot; t comes from pts, so this is right for variable
    // frame rates too, and kept frames keep their pts (hence their source index).
    const f = c.fps;
    filters.push(`select='isnan(prev_selected_t)+gt(floor(t*${f}),floor(prev_selected_t*${f}))'`);
  }
  filters.push(
    c.size
      ? `scale=${c.size.width}:${c.size.height}`
      : `scale='min(${c.maxSide},iw)':'min(${c.maxSide},ih)':force_original_aspect_ratio=decrease`,
  );
  filters.push('format=rgb24', 'showinfo');
  return { chain: filters.join(','), lastShowinfo: filters.length - 1 };
}

const SHOWINFO = /^\[Parsed_showinfo_(\d+) @ [^\]]*\] (?:n:\s*(\d+) pts:\s*(-?\d+|NOPTS).* s:(\d+)x(\d+)|config in time_base: (\d+)\/(\d+))/;
const INPUT_VIDEO = /^\s*Stream #0:\d+.*?: Video: (\w+)(.*)$/;
export const DURATION = /^\s*Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/;
// Lines that carry no diagnosis: headers, stream listings, per-frame logs.
const NOISE = /^(\s|\[Parsed_showinfo_|Input #|Output #|Stream mapping|Press \[q\]|frame=|video:|Conversion failed!)/;

export function parseInputVideo(line: string): SourceInfo | undefined {
  const m = INPUT_VIDEO.exec(line);
  if (!m) return undefined;
  const size = /, (\d+)x(\d+)/.exec(m[2]);
  if (!size) return undefined;
  const rate = /, ([\d.]+) (?:fps|tbr)/.exec(m[2]);
  return {
    codec: m[1],
    width: Number(size[1]),
    height: Number(size[2]),
    ...(rate ? { fps: Number(rate[1]) } : {}),
  };
}

/** A short, readable reason from ffmpeg's last diagnostic lines. */
function diagnosis(lines: string[]): string {
  const useful = lines.filter((l) => l.trim() !== '' && !NOISE.test(l)).slice(-2);
  return useful.map((l) => l.replace(/ @ 0x[0-9a-f]+\]/, ']').trim()).join('; ');
}

/**
 * Why `file` cannot be run, or undefined when it can. Checked before spawning because
 * fluent-ffmpeg 2.1 throws an uncaught TypeError (reading its output rings) when a spawn fails
 * after its capability cache is warm, which would take the whole process down.
 */
function checkExecutable(file: string): string | undefined {
  const candidates = file.includes('/') ? [file] : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((d) => path.join(d, file));
  const ok = candidates.some((c) => {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return fs.statSync(c).isFile();
    } catch {
      return false;
    }
  });
  return ok ? undefined : `ffmpeg binary not found or not executable: ${file}`;
}

// Every ffmpeg started here, so that none outlives this process even when no one called stop().
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(proc: ChildProcess): void {
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const p of running) p.kill('SIGKILL');
    });
  }
}

/**
 * Starts ffmpeg on a vetted source and reports frames, source info and the end through
 * `handlers`. Frame data is a fresh Uint8Array per frame (width*height*3 bytes).
 *
 * @example
 * const s = startDecode({ ffmpegPath, source, maxSide: 320, realtime: false, loop: false,
 *   strict: true, rtspTransport: 'tcp' }, { onInfo, onFrame: (f) => use(f), onExit: (err) => {} });
 */
export function startDecode(config: DecodeConfig, handlers: DecodeHandlers): DecodeSession {
  const missing = checkExecutable(config.ffmpegPath);
  if (missing) {
    queueMicrotask(() => handlers.onExit(new Error(`ffmpeg failed on ${config.source.input}: ${missing}`)));
    return { pause() {}, resume() {}, kill: () => Promise.resolve() };
  }
  const { chain, lastShowinfo } = filterChain(config);
  // emitClose:false keeps fluent-ffmpeg from reading our stream's close as "consumer gone" and
  // killing ffmpeg 20 ms later, which would race with a normal end.
  const out = new PassThrough({ emitClose: false });
  const command = ffmpeg({ stdoutLines: 40 })
    .input(config.route?.target ?? inputTarget(config.source))
    .inputOptions(...inputOptions(config))
    .outputOptions('-map', '0:v:0', '-an', '-sn', '-dn', '-vf', chain, '-vsync', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24');

  // setFfmpegPath() would set one path for every command in the process; each source may have
  // its own, so this command's path lookup is answered directly.
  (command as unknown as { _getFfmpegPath: (cb: (err: null, path: string) => void) => void })._getFfmpegPath = (cb) =>
    cb(null, config.ffmpegPath);
  if (config.route) {
    // Every HTTP request and TLS connection ffmpeg makes goes through the guard's proxy (ffmpeg
    // reads http_proxy for both); a no_proxy inherited from our environment must not exempt any.
    const { no_proxy: _, ...env } = process.env;
    const spawnOptions = { env: { ...env, http_proxy: config.route.httpProxy } };
    const internals = command as unknown as { _spawnFfmpeg: (args: string[], options: object, ...rest: unknown[]) => void };
    const spawn = internals._spawnFfmpeg;
    internals._spawnFfmpeg = (args, options, ...rest) => spawn.call(command, args, { ...options, ...spawnOptions }, ...rest);
  }

  let proc: ChildProcess | undefined;
  let killRequested = false;
  let finished = false; // fluent-ffmpeg reported the end
  let finishError: Error | undefined;
  let stdoutEnded = false;
  let reported = false;
  let held = false;

  // stderr bookkeeping
  const tail: string[] = [];
  let inInput = true;
  let infoSent = false;
  let durationSec: number | undefined;
  let timeBase = 0; // seconds per pts tick at the first showinfo
  let nBase = 0; // showinfo's n restarts when ffmpeg rebuilds the graph (size change)
  let lastRawN = -1;
  const decoded: { n: number; pts: number | undefined }[] = [];
  const metas: { n: number; pts: number | undefined; width: number; height: number }[] = [];
  let lastN = -1;

  // stdout bookkeeping
  const chunks: Buffer[] = [];
  let buffered = 0;

  function take(size: number): Uint8Array {
    const data = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      const c = chunks[0];
      const need = size - filled;
      if (c.length <= need) {
        data.set(c, filled);
        filled += c.length;
        chunks.shift();
      } else {
        data.set(c.subarray(0, need), filled);
        chunks[0] = c.subarray(need);
        filled += need;
      }
    }
    buffered -= size;
    return data;
  }

  /** Whether a whole frame is waiting in the stdout bytes. */
  const frameReady = (): boolean => metas.length > 0 && buffered >= metas[0].width * metas[0].height * 3;

  function drain(): void {
    // While held, complete frames stay as bytes: the consumer's queue never grows past its limit.
    while (!held && frameReady()) {
      const m = metas.shift()!;
      const data = take(m.width * m.height * 3);
      if (killRequested) continue;
      handlers.onFrame({ n: m.n, ptsSec: m.pts === undefined ? NaN : m.pts * timeBase, width: m.width, height: m.height, data });
    }
  }

  function onStderr(line: string): void {
    const si = SHOWINFO.exec(line);
    if (si) {
      const instance = Number(si[1]);
      if (si[6] !== undefined) {
        if (instance === 0) timeBase = Number(si[6]) / Number(si[7]);
        return;
      }
      const pts = si[3] === 'NOPTS' ? undefined : Number(si[3]);
      if (instance === 0) {
        const raw = Number(si[2]);
        if (raw <= lastRawN) nBase += lastRawN + 1;
        lastRawN = raw;
        decoded.push({ n: nBase + raw, pts });
      } else if (instance === lastShowinfo) {
        // Frames the select filter skipped sit at the head of `decoded`; drop up to ours.
        let n = lastN + 1;
        while (decoded.length > 0) {
          const d = decoded.shift()!;
          if (pts === undefined || d.pts === pts) {
            n = d.n;
            break;
          }
        }
        lastN = n;
        metas.push({ n, pts, width: Number(si[4]), height: Number(si[5]) });
        drain();
      }
      return;
    }
    if (/^(Output #|Stream mapping)/.test(line)) inInput = false;
    if (inInput && !infoSent) {
      const d = DURATION.exec(line);
      if (d) durationSec = Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3]);
      const info = parseInputVideo(line);
      if (info) {
        infoSent = true;
        handlers.onInfo(durationSec === undefined ? info : { ...info, durationSec });
      }
    }
    tail.push(line);
    if (tail.length > 30) tail.shift();
  }

  function maybeReport(): void {
    // A process that was killed or never started has no more frames worth waiting for.
    const delivered = stdoutEnded && !frameReady();
    if (reported || !finished || !(delivered || killRequested || proc === undefined)) return;
    reported = true;
    handlers.onExit(finishError);
  }

  out.on('data', (chunk: Buffer) => {
    if (killRequested) return;
    chunks.push(chunk);
    buffered += chunk.length;
    drain();
  });
  out.on('end', () => {
    stdoutEnded = true;
    maybeReport();
  });

  command.on('start', () => {
    proc = (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc;
    // No pid: the spawn failed (e.g. a wrong ffmpeg path); fluent-ffmpeg reports it as an error.
    if (proc?.pid === undefined) proc = undefined;
    else track(proc);
  });
  command.on('stderr', onStderr);
  command.on('end', () => {
    finished = true;
    maybeReport();
  });
  command.on('error', (err: Error) => {
    finished = true;
    if (!killRequested) {
      const why = diagnosis(tail);
      const code = /exited with code (\d+)/.exec(err.message)?.[1];
      finishError = new Error(
        code !== undefined ? `ffmpeg failed (exit ${code}) on ${config.source.input}: ${why || 'no diagnostic'}` : `ffmpeg failed on ${config.source.input}: ${err.message}`,
      );
    }
    maybeReport();
  });
  command.output(out).run();

  let exited: Promise<void> | undefined;
  return {
    pause() {
      held = true;
      out.pause();
    },
    resume() {
      held = false;
      out.resume();
      drain();
      maybeReport();
    },
    kill(graceMs: number): Promise<void> {
      if (exited) return exited;
      killRequested = true;
      held = false;
      // Keep stdout flowing (and discarded) so a paused ffmpeg is not stuck in write().
      out.resume();
      exited = new Promise<void>((resolve) => {
        const waitFor = (p: ChildProcess): void => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
          p.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          p.kill('SIGTERM');
        };
        if (proc) return waitFor(proc);
        // Not spawned yet: wait for the spawn (then kill) or for fluent-ffmpeg to give up.
        command.once('start', () => (proc ? waitFor(proc) : resolve()));
        command.once('error', () => {
          if (!proc) resolve();
        });
      });
      return exited;
    },
  };
}
