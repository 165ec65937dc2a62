/**
 * Running one labelling job: the video through an engine into `labels.csv` and `labels.jsonl` in
 * the job's folder. Both files are written under temporary names and renamed only when complete,
 * so a job folder holds finished labels or none; a failed write (disk full) ends the job with the
 * error instead of escaping as an event. The same function runs in the server's process (tests,
 * library use) and in a job process (`arbex serve`, see job-process.ts).
 */
import path from 'node:path';
import { openAtomic } from '../pipeline/output.js';
import type { Engine, SmoothingSpec } from '../pipeline/types.js';
import { csvHeader, csvRows, jsonlLine } from '../pipeline/labels-format.js';

export interface JobTask {
  /** The file to read (an opened handle's name, /proc/<pid>/fd/<n>). */
  input: string;
  /** The video's name, used in messages instead of `input`. */
  name: string;
  /** Receives labels.csv and labels.jsonl. */
  outDir: string;
  smoothing?: SmoothingSpec;
  detectEvery?: number;
  /** More frames than this fail the job. */
  maxFrames: number;
}

export interface JobHooks {
  /** Stops the job; the run then rejects. */
  signal: AbortSignal;
  onProgress(done: number, total: number | undefined): void;
}

/** Runs one job to its end: resolves with the number of frames, rejects with why it stopped. */
export type JobRunner = (task: JobTask, hooks: JobHooks) => Promise<{ frames: number }>;

/** A failure whose message is meant for the job's `error`. */
export class JobError extends Error {
  override name = 'JobError';
}

/**
 * Labels `task.input` with `engine` into the task's folder.
 *
 * @example
 * await labelJob(engine, { input, name: 'clip.mp4', outDir, maxFrames: 100_000 }, { signal, onProgress: () => {} });
 */
export async function labelJob(engine: Pick<Engine, 'classes' | 'labelVideo'>, task: JobTask, hooks: JobHooks): Promise<{ frames: number }> {
  const { input, name, outDir, smoothing, detectEvery, maxFrames } = task;
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  hooks.signal.addEventListener('abort', onAbort);
  if (hooks.signal.aborted) stop.abort();
  let overLimit = false;
  const describe = (e: unknown) => {
    if (overLimit) return new JobError(`${name} has more than ${maxFrames} frames, the limit per job`);
    const message = String((e as Error)?.message ?? e).split(input).join(name);
    return (e as NodeJS.ErrnoException)?.syscall ? new JobError(`could not write the labels: ${message}`) : new JobError(message);
  };
  let csv: Awaited<ReturnType<typeof openAtomic>> | undefined;
  let jsonl: Awaited<ReturnType<typeof openAtomic>> | undefined;
  try {
    csv = await openAtomic(path.join(outDir, 'labels.csv'));
    jsonl = await openAtomic(path.join(outDir, 'labels.jsonl'));
    await csv.write(`${csvHeader(engine.classes)}\n`);
    let frames = 0;
    const outputs = engine.labelVideo(input, {
      smoothing,
      detectEvery,
      signal: stop.signal,
      onProgress: (done, total) => {
        if (done > maxFrames && !overLimit) {
          overLimit = true;
          stop.abort();
        }
        hooks.onProgress(done, total);
      },
    });
    for await (const output of outputs) {
      if (stop.signal.aborted) break;
      await csv.write(`${csvRows(output, engine.classes).join('\n')}\n`);
      await jsonl.write(`${jsonlLine(output)}\n`);
      frames++;
    }
    if (stop.signal.aborted) throw new JobError(`labelling of ${name} was stopped`);
    await csv.commit();
    await jsonl.commit();
    return { frames };
  } catch (e) {
    throw describe(e);
  } finally {
    hooks.signal.removeEventListener('abort', onAbort);
    await csv?.abort();
    await jsonl?.abort();
  }
}

/**
 * Runs jobs in this process, through `engine`.
 *
 * @example
 * const jobs = createJobs({ runner: inProcessRunner(engine), ... });
 */
export function inProcessRunner(engine: Pick<Engine, 'classes' | 'labelVideo'>): JobRunner {
  return (task, hooks) => labelJob(engine, task, hooks);
}
