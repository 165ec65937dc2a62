/**
 * The ffmpeg command lines of ingest, as pure functions: a vetted source and the decode options
 * in, argument lists out. Nothing here runs ffmpeg; decode.ts and probe.ts run what these build.
 *
 * The whitelists are security logic: they decide what ffmpeg may open besides the vetted input.
 */
import path from 'node:path';
import type { GuardRoute } from './guard.js';
import type { Source } from './source.js';

// Demuxers a local file may use. Leaving out hls and concat matters: both are auto-detected
// from content and would open other files named inside the one we vetted. The *_pipe image
// demuxers read one still image from the one file (image2, which expands file patterns, is out).
export const FILE_FORMATS = [
  'mov,mp4,m4a,3gp,3g2,mj2', 'matroska,webm', 'avi', 'mpegts', 'mpeg', 'flv', 'asf', 'ogg',
  'h264', 'hevc', 'm4v', 'mjpeg', 'mpjpeg', 'gif', 'yuv4mpegpipe',
  'png_pipe', 'jpeg_pipe', 'bmp_pipe', 'webp_pipe',
].join(',');

/** Protocols an RTSP source may use: the stream, its RTP transports, TLS and the guard's proxy. */
export const RTSP_PROTOCOLS = 'rtsp,rtsps,rtp,srtp,udp,tcp,tls,httpproxy';

/** Protocols an HTTP source may use: only network ones, so an HLS playlist cannot point at local files. */
export const HTTP_PROTOCOLS = 'http,https,tls,tcp,crypto,httpproxy';

/** ffmpeg picks image2 for these extensions by name; name the one-image demuxer instead. */
const STILL_IMAGE_FORMATS: Record<string, string> = { '.jpg': 'jpeg_pipe', '.jpeg': 'jpeg_pipe', '.png': 'png_pipe', '.bmp': 'bmp_pipe', '.webp': 'webp_pipe' };

/** What the decode command depends on (decode.ts's DecodeConfig without the binary). */
export interface CommandOptions {
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

/** The whole decode command: what to open, the options before `-i` and after it, and the filter chain. */
export interface DecodeCommand {
  input: string;
  inputOptions: string[];
  outputOptions: string[];
  /** The `-vf` chain. */
  chain: string;
  /** The instance index of the chain's last showinfo (`Parsed_showinfo_N`), which logs the frames written to stdout. */
  lastShowinfo: number;
}

/** `-f <demuxer>` for a still image named by its extension, else nothing. */
export function stillImageFormat(file: string): string[] {
  const format = STILL_IMAGE_FORMATS[path.extname(file).toLowerCase()];
  return format ? ['-f', format] : [];
}

/** The options before `-i`: quiet, no stdin, and each source kind's protocol and format limits. */
export function inputOptions(c: CommandOptions): string[] {
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
      return [...common, '-protocol_whitelist', RTSP_PROTOCOLS, '-rtsp_transport', c.rtspTransport];
    case 'http':
      return [...common, '-protocol_whitelist', HTTP_PROTOCOLS];
    case 'v4l2':
      return [...common, '-f', 'v4l2'];
  }
}

/** What ffmpeg opens: the guard's route when there is one, else the source's path, URL or device. */
export function inputTarget(source: Source, route?: GuardRoute): string {
  if (route) return route.target;
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

/**
 * The filter chain; returns it with the instance index of the last showinfo. A showinfo FIRST
 * logs every decoded frame (its source number and pts) before any fps selection; one LAST logs
 * every frame written to stdout, with its final size.
 */
export function filterChain(c: Pick<CommandOptions, 'size' | 'maxSide' | 'fps'>): { chain: string; lastShowinfo: number } {
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

/** The options after `-i`: the first video stream only, through `chain`, as raw RGB on stdout. */
export function outputOptions(chain: string): string[] {
  return ['-map', '0:v:0', '-an', '-sn', '-dn', '-vf', chain, '-vsync', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24'];
}

/**
 * The decode command for a source.
 *
 * @example
 * const cmd = decodeCommand({ source, maxSide: 320, realtime: false, loop: false, strict: true, rtspTransport: 'tcp' });
 * spawn(ffmpegPath, [...cmd.inputOptions, '-i', cmd.input, ...cmd.outputOptions, 'pipe:1']);
 */
export function decodeCommand(c: CommandOptions): DecodeCommand {
  const { chain, lastShowinfo } = filterChain(c);
  return { input: inputTarget(c.source, c.route), inputOptions: inputOptions(c), outputOptions: outputOptions(chain), chain, lastShowinfo };
}

/**
 * The environment of a decode that connects through the guard: every HTTP request and TLS
 * connection ffmpeg makes goes through the guard's proxy (ffmpeg reads http_proxy for both), and
 * a no_proxy inherited from ours must not exempt any.
 */
export function routedEnv(route: GuardRoute, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { no_proxy: _, ...rest } = env;
  return { ...rest, http_proxy: route.httpProxy };
}

/** `ffmpeg -i` with no output on a local file, under the same limits as decoding (probe.ts). */
export function probeArgs(file: string): string[] {
  return ['-hide_banner', '-nostdin', '-protocol_whitelist', 'file', '-format_whitelist', FILE_FORMATS, '-i', file];
}
