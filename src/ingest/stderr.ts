/**
 * Reading a decode process's stderr (the command from command.ts), line by line, without the
 * process: the input's description, the frames each showinfo logs, and a diagnosis when it fails.
 *
 * - the input's `Stream #0:0: Video: ...` line gives the native codec, size and rate;
 * - the FIRST showinfo logs every decoded frame (`n` = source frame number, `pts`), before any
 *   fps selection;
 * - the LAST showinfo logs every frame that is written to stdout, with its final size.
 * Matching the two by pts gives each output frame its source index even when `select` skips frames.
 */
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

/** An output frame as the last showinfo logged it: its source frame number, pts in ticks, size. */
export interface FrameMeta {
  n: number;
  /** In time-base ticks (`timeBase()` seconds each); undefined for NOPTS. */
  pts: number | undefined;
  width: number;
  height: number;
}

export interface StderrReader {
  /** Reads one line; returns the source info the first time it is known, and each output frame's meta. */
  read(line: string): { info?: SourceInfo; frame?: FrameMeta };
  /** Seconds per pts tick (from the first showinfo's configuration; 0 until then). */
  timeBase(): number;
  /** A short, readable reason from the last diagnostic lines. */
  diagnosis(): string;
}

const SHOWINFO = /^\[Parsed_showinfo_(\d+) @ [^\]]*\] (?:n:\s*(\d+) pts:\s*(-?\d+|NOPTS).* s:(\d+)x(\d+)|config in time_base: (\d+)\/(\d+))/;
const INPUT_VIDEO = /^\s*Stream #0:\d+.*?: Video: (\w+)(.*)$/;
export const DURATION = /^\s*Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/;
// Lines that carry no diagnosis: headers, stream listings, per-frame logs.
const NOISE = /^(\s|\[Parsed_showinfo_|Input #|Output #|Stream mapping|Press \[q\]|frame=|video:|Conversion failed!)/;
const TAIL_LINES = 30;

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
export function diagnosis(lines: string[]): string {
  const useful = lines.filter((l) => l.trim() !== '' && !NOISE.test(l)).slice(-2);
  return useful.map((l) => l.replace(/ @ 0x[0-9a-f]+\]/, ']').trim()).join('; ');
}

/**
 * A reader for one decode process whose chain's last showinfo is instance `lastShowinfo`.
 *
 * @example
 * const reader = createStderrReader(command.lastShowinfo);
 * command.on('stderr', (line) => { const { info, frame } = reader.read(line); ... });
 */
export function createStderrReader(lastShowinfo: number): StderrReader {
  const tail: string[] = [];
  let inInput = true;
  let infoSent = false;
  let durationSec: number | undefined;
  let timeBase = 0; // seconds per pts tick at the first showinfo
  let nBase = 0; // showinfo's n restarts when ffmpeg rebuilds the graph (size change)
  let lastRawN = -1;
  const decoded: { n: number; pts: number | undefined }[] = [];
  let lastN = -1;

  function showinfo(si: RegExpExecArray): FrameMeta | undefined {
    const instance = Number(si[1]);
    if (si[6] !== undefined) {
      if (instance === 0) timeBase = Number(si[6]) / Number(si[7]);
      return undefined;
    }
    const pts = si[3] === 'NOPTS' ? undefined : Number(si[3]);
    if (instance === 0) {
      const raw = Number(si[2]);
      if (raw <= lastRawN) nBase += lastRawN + 1;
      lastRawN = raw;
      decoded.push({ n: nBase + raw, pts });
      return undefined;
    }
    if (instance !== lastShowinfo) return undefined;
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
    return { n, pts, width: Number(si[4]), height: Number(si[5]) };
  }

  return {
    read(line) {
      const si = SHOWINFO.exec(line);
      if (si) {
        const frame = showinfo(si);
        return frame ? { frame } : {};
      }
      let info: SourceInfo | undefined;
      if (/^(Output #|Stream mapping)/.test(line)) inInput = false;
      if (inInput && !infoSent) {
        const d = DURATION.exec(line);
        if (d) durationSec = Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3]);
        const video = parseInputVideo(line);
        if (video) {
          infoSent = true;
          info = durationSec === undefined ? video : { ...video, durationSec };
        }
      }
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      return info ? { info } : {};
    },
    timeBase: () => timeBase,
    diagnosis: () => diagnosis(tail),
  };
}
