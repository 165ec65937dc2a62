/**
 * Turning a user-supplied source string into a typed, vetted source. This is the security
 * boundary of ingest: ffmpeg understands far more than we want to expose (`concat:` and
 * `subfile:` read arbitrary files, `pipe:` reads our own descriptors, `data:` embeds content, a
 * leading `-` would be parsed as an option), so everything not explicitly allowed is refused
 * here, before any process starts.
 */
import fs from 'node:fs';
import net from 'node:net';
import { isInsideMediaDirs, mediaCandidates, realMediaDirs } from './media.js';
import { createAddressPolicy, type NetworkPolicy } from './policy.js';
import { redact } from './redact.js';

export type SourceKind = 'file' | 'rtsp' | 'http' | 'v4l2';

export interface FileSource {
  kind: 'file';
  /** Canonical absolute path (symlinks and `..` resolved) inside one of the media folders. */
  path: string;
  /** What the caller passed, for messages and logs. */
  input: string;
}

export interface RtspSource {
  kind: 'rtsp';
  /** Normalised rtsp:// or rtsps:// URL. */
  url: string;
  input: string;
}

export interface HttpSource {
  kind: 'http';
  /** Normalised http:// or https:// URL (HLS playlist, MJPEG stream or progressive MP4). */
  url: string;
  input: string;
}

export interface V4l2Source {
  kind: 'v4l2';
  /** A V4L2 capture device, /dev/videoN. */
  device: string;
  input: string;
}

export type Source = FileSource | RtspSource | HttpSource | V4l2Source;

export interface ParseSourceOptions {
  /** Folders from which local files may be read (typically `readSettings().mediaDirs`). */
  mediaDirs: string[];
  /**
   * Where network sources may connect (policy.ts); default: not to loopback, link-local, metadata
   * or unspecified addresses. A URL whose host is such an IP literal is refused here; host names
   * are checked when ingest connects.
   */
  network?: Partial<NetworkPolicy>;
}

const NETWORK_SCHEMES: Record<string, 'rtsp' | 'http'> = {
  'rtsp:': 'rtsp',
  'rtsps:': 'rtsp',
  'http:': 'http',
  'https:': 'http',
};

const V4L2_DEVICE = /^\/dev\/video\d+$/;
// Anything of the form "scheme:" is a protocol to ffmpeg (e.g. concat:, subfile:, pipe:, data:).
const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):/;

/** A source the caller may not use; thrown before any process is started. */
export class SourceError extends Error {
  override name = 'SourceError';
}

function parseFile(input: string, mediaDirs: string[]): FileSource {
  const dirs = realMediaDirs(mediaDirs);
  if (dirs.length === 0) throw new SourceError(`Local files are disabled: no existing media folder is configured`);
  const found = mediaCandidates(input, mediaDirs).find((c) => fs.existsSync(c));
  if (found === undefined) throw new SourceError(`Source file not found: ${input}`);
  const real = fs.realpathSync(found);
  if (!isInsideMediaDirs(real, dirs)) {
    throw new SourceError(`Source file is outside the media folders (${dirs.join(', ')}): ${input}`);
  }
  if (!fs.statSync(real).isFile()) throw new SourceError(`Source is not a regular file: ${input}`);
  return { kind: 'file', path: real, input };
}

function parseUrl(input: string, kind: 'rtsp' | 'http', network: Partial<NetworkPolicy>): RtspSource | HttpSource {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new SourceError(`Invalid URL: ${redact(input)}`);
  }
  if (!url.hostname) throw new SourceError(`URL has no host: ${redact(input)}`);
  const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const refusal = net.isIP(literal) ? createAddressPolicy(network).refusal(literal) : undefined;
  if (refusal) throw new SourceError(`Source refused: ${literal} is ${refusal}`);
  return { kind, url: url.href, input } as RtspSource | HttpSource;
}

/**
 * Vets a source string: a file inside `mediaDirs`, an rtsp(s):// or http(s):// URL, or a V4L2
 * device /dev/videoN. Throws a `SourceError` naming the problem for anything else.
 *
 * @example
 * const src = parseSource('rtsp://cam.local/stream', { mediaDirs: readSettings().mediaDirs });
 * const file = parseSource('clip.mp4', { mediaDirs: ['/srv/media'] }); // -> /srv/media/clip.mp4
 */
export function parseSource(input: string, { mediaDirs, network = {} }: ParseSourceOptions): Source {
  if (typeof input !== 'string' || input.trim() === '') throw new SourceError('Source is empty');
  if (input !== input.trim()) throw new SourceError(`Source has leading or trailing whitespace: ${JSON.stringify(input)}`);
  if (/[\u0000-\u001f\u007f]/.test(input)) throw new SourceError('Source contains control characters');
  if (input.startsWith('-')) throw new SourceError(`Source may not start with "-" (it would be read as an ffmpeg option): ${input}`);

  const scheme = SCHEME.exec(input)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    const kind = NETWORK_SCHEMES[`${scheme}:`];
    if (kind === undefined) {
      throw new SourceError(`Protocol "${scheme}:" is not allowed (allowed: rtsp, rtsps, http, https, local files, /dev/videoN)`);
    }
    return parseUrl(input, kind, network);
  }
  if (V4L2_DEVICE.test(input)) return { kind: 'v4l2', device: input, input };
  return parseFile(input, mediaDirs);
}
