/**
 * Row formats for labelled videos, shared by the server's job downloads and the CLI.
 *
 * CSV: one row per face per frame, and one row with an empty track for a frame without faces, so
 * every decoded frame is accounted for. Columns:
 * `frame,time_ms,track,x,y,w,h,label,confidence,p_<class>...,primary_<class>...,smoothed_label,s_<class>...`
 * where `p_` is the corrected (reported) distribution, `primary_` the model's primary one and `s_`
 * the smoothed corrected one. JSONL: one FrameOutput per line.
 *
 * @example
 * const lines = [csvHeader(engine.classes)];
 * for await (const out of engine.labelVideo(file)) lines.push(...csvRows(out, engine.classes));
 */
import type { FrameOutput } from './types.js';

/** Probabilities keep 6 decimals (float32 carries about 7 digits); pixels and times 2. */
const PROB_DECIMALS = 6;
const PIXEL_DECIMALS = 2;

function num(x: number, decimals: number): string {
  if (!Number.isFinite(x)) return '';
  const f = 10 ** decimals;
  // `+ 0` turns -0 into 0 so that a rounded tiny negative never prints as "-0".
  return String(Math.round(x * f) / f + 0);
}

/** Quotes a CSV field only when it needs it (RFC 4180). */
export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The header line (no newline); class names become column suffixes. */
export function csvHeader(classes: readonly string[]): string {
  const cols = ['frame', 'time_ms', 'track', 'x', 'y', 'w', 'h', 'label', 'confidence'];
  for (const c of classes) cols.push(`p_${c}`);
  for (const c of classes) cols.push(`primary_${c}`);
  cols.push('smoothed_label');
  for (const c of classes) cols.push(`s_${c}`);
  return cols.map(csvField).join(',');
}

/** Number of columns in a row for `classes`. */
export function csvWidth(classes: readonly string[]): number {
  return 10 + 3 * classes.length;
}

function dist(values: readonly number[], classes: readonly string[], what: string): string[] {
  if (values.length !== classes.length) {
    throw new Error(`${what} has ${values.length} values but there are ${classes.length} classes`);
  }
  return values.map((v) => num(v, PROB_DECIMALS));
}

/** The CSV lines (no newlines) of one frame: one per face, or one with an empty track. */
export function csvRows(output: FrameOutput, classes: readonly string[]): string[] {
  const head = [String(output.frame), num(output.ptsMs, PIXEL_DECIMALS)];
  if (output.results.length === 0) {
    return [[...head, ...new Array<string>(csvWidth(classes) - head.length).fill('')].join(',')];
  }
  return output.results.map((f) =>
    [
      ...head,
      String(f.track),
      num(f.box.x, PIXEL_DECIMALS),
      num(f.box.y, PIXEL_DECIMALS),
      num(f.box.w, PIXEL_DECIMALS),
      num(f.box.h, PIXEL_DECIMALS),
      csvField(f.label),
      num(f.confidence, PROB_DECIMALS),
      ...dist(f.corrected, classes, 'corrected'),
      ...dist(f.primary, classes, 'primary'),
      csvField(f.smoothedLabel),
      ...dist(f.smoothed, classes, 'smoothed'),
    ].join(','),
  );
}

/** One JSONL line (no newline). */
export function jsonlLine(output: FrameOutput): string {
  return JSON.stringify(output);
}
