/**
 * `arbex label` as a library: one video through the engine into a CSV or JSONL file, written
 * atomically (a failed or interrupted run leaves no file under the final name). Rows come from
 * the shared label formats (server/labels-format.ts), so CLI files and server downloads match.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { csvHeader, csvRows, jsonlLine } from '../pipeline/labels-format.js';
import type { Engine, LabelOptions } from '../pipeline/types.js';
import { openAtomic } from '../pipeline/output.js';

export type LabelFormat = 'csv' | 'jsonl';

export interface LabelFileOptions extends Pick<LabelOptions, 'smoothing' | 'detectEvery' | 'signal' | 'onProgress'> {
  format: LabelFormat;
}

export interface LabelFileResult {
  file: string;
  frames: number;
  /** Frames with at least one face. */
  framesWithFaces: number;
  rows: number;
}

/** The format a file name asks for (.jsonl / .ndjson → jsonl, anything else csv). */
export function formatOf(file: string): LabelFormat {
  return /\.(jsonl|ndjson)$/i.test(file) ? 'jsonl' : 'csv';
}

/**
 * Labels `video` into `out`.
 *
 * @example
 * await labelToFile(engine, 'clip.mp4', 'clip.csv', { format: 'csv', smoothing: { kind: 'centred', window: 25 } });
 */
export async function labelToFile(engine: Pick<Engine, 'classes' | 'labelVideo'>, video: string, out: string, options: LabelFileOptions): Promise<LabelFileResult> {
  const { format, ...labelOptions } = options;
  const file = await openAtomic(out);
  const result: LabelFileResult = { file: file.path, frames: 0, framesWithFaces: 0, rows: 0 };
  try {
    if (format === 'csv') await file.write(`${csvHeader(engine.classes)}\n`);
    for await (const output of engine.labelVideo(video, labelOptions)) {
      const lines = format === 'csv' ? csvRows(output, engine.classes) : [jsonlLine(output)];
      await file.write(`${lines.join('\n')}\n`);
      result.frames++;
      result.rows += lines.length;
      if (output.results.length > 0) result.framesWithFaces++;
    }
    await file.commit();
    return result;
  } finally {
    await file.abort();
  }
}

export const VIDEO_EXTENSIONS = ['.mp4', '.avi', '.mkv', '.mov', '.webm', '.m4v', '.mpg', '.mpeg'];
/** Still images, labelled as one-frame videos. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.bmp', '.webp'];
const LABEL_EXTENSIONS = [...VIDEO_EXTENSIONS, ...IMAGE_EXTENSIONS];

/** A file → itself; a folder → its videos and still images (by extension), sorted; refuses an empty folder. */
export async function videosIn(input: string): Promise<{ folder: boolean; videos: string[] }> {
  if (!(await stat(input)).isDirectory()) return { folder: false, videos: [input] };
  const videos = (await readdir(input))
    .filter((f) => LABEL_EXTENSIONS.includes(path.extname(f).toLowerCase()))
    .sort()
    .map((f) => path.join(input, f));
  if (videos.length === 0) throw new Error(`${input}: no video or image files (${LABEL_EXTENSIONS.join(' ')})`);
  return { folder: true, videos };
}
