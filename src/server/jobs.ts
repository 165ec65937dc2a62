/**
 * Labelling jobs for recorded videos: each runs `engine.labelVideo` frame by frame and writes
 * the labels to CSV and JSONL files as it goes, so a long video never accumulates in memory.
 * Jobs run one at a time by default: they share the engine's single model, so running two at once
 * would only split its throughput and make every ETA wrong.
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Engine, LabelOptions, SmoothingSpec } from '../pipeline/types.js';
import { csvHeader, csvRows, jsonlLine } from './labels-format.js';

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobInfo {
  id: string;
  name: string;
  state: JobState;
  framesDone: number;
  framesTotal?: number;
  progress?: number;
  etaSeconds?: number;
  error?: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
}

export interface JobRequest {
  /** The video to label. */
  file: string;
  name: string;
  smoothing?: SmoothingSpec;
  detectEvery?: number;
  /** Delete `file` when the job ends (uploads are temporary copies). */
  removeInput?: boolean;
}

export interface JobsOptions {
  engine: Engine;
  /** Folder that receives one sub-folder of outputs per job. */
  dir: string;
  /** Jobs labelled at the same time. */
  concurrency?: number;
}

export interface Jobs {
  start(request: JobRequest): JobInfo;
  get(id: string): JobInfo | undefined;
  list(): JobInfo[];
  /** Path of a finished job's output, or undefined while it is not done. */
  output(id: string, kind: 'csv' | 'jsonl'): string | undefined;
  /** Cancels a queued or running job, waits for it to stop, deletes its files and forgets it. */
  remove(id: string): Promise<JobInfo | undefined>;
  /** Counts by state, for /metrics. */
  counts(): Record<JobState, number>;
  close(): Promise<void>;
}

interface Job {
  info: JobInfo;
  request: JobRequest;
  dir: string;
  abort: AbortController;
  startedMs?: number;
  finished?: Promise<void>;
}

async function writeLine(out: WriteStream, line: string): Promise<void> {
  if (!out.write(`${line}\n`)) await once(out, 'drain');
}

async function endStream(out: WriteStream): Promise<void> {
  if (out.writableFinished) return;
  out.end();
  await once(out, 'finish');
}

const DEFAULTS = { concurrency: 1 };

/**
 * @example
 * const jobs = createJobs({ engine, dir: '/tmp/arbex-jobs' });
 * const job = jobs.start({ file: 'media/clip.mp4', name: 'clip.mp4' });
 */
export function createJobs(options: JobsOptions): Jobs {
  const { engine, dir, concurrency } = { ...DEFAULTS, ...options };
  const jobs = new Map<string, Job>();
  const queue: Job[] = [];
  let running = 0;

  const snapshot = (job: Job): JobInfo => {
    const info = { ...job.info };
    if (info.framesTotal) info.progress = Math.min(1, info.framesDone / info.framesTotal);
    if (info.state === 'running' && info.framesTotal && info.framesDone > 0 && job.startedMs !== undefined) {
      const perFrame = (Date.now() - job.startedMs) / 1000 / info.framesDone;
      info.etaSeconds = Math.max(0, Math.round(perFrame * (info.framesTotal - info.framesDone) * 10) / 10);
    }
    return info;
  };

  const run = async (job: Job) => {
    job.info.state = 'running';
    job.startedMs = Date.now();
    job.info.startedAt = new Date(job.startedMs).toISOString();
    await mkdir(job.dir, { recursive: true });
    const csv = createWriteStream(path.join(job.dir, 'labels.csv'));
    const jsonl = createWriteStream(path.join(job.dir, 'labels.jsonl'));
    try {
      await writeLine(csv, csvHeader(engine.classes));
      const labelOptions: LabelOptions = {
        smoothing: job.request.smoothing,
        detectEvery: job.request.detectEvery,
        signal: job.abort.signal,
        onProgress: (done, total) => {
          job.info.framesDone = Math.max(job.info.framesDone, done);
          if (total !== undefined) job.info.framesTotal = total;
        },
      };
      for await (const output of engine.labelVideo(job.request.file, labelOptions)) {
        if (job.abort.signal.aborted) break;
        for (const row of csvRows(output, engine.classes)) await writeLine(csv, row);
        await writeLine(jsonl, jsonlLine(output));
        job.info.framesDone = Math.max(job.info.framesDone, output.frame + 1);
      }
      await Promise.all([endStream(csv), endStream(jsonl)]);
      if (job.abort.signal.aborted) {
        job.info.state = 'cancelled';
      } else {
        job.info.state = 'done';
        job.info.framesTotal = job.info.framesDone;
      }
    } catch (e) {
      csv.destroy();
      jsonl.destroy();
      job.info.state = job.abort.signal.aborted ? 'cancelled' : 'failed';
      if (job.info.state === 'failed') job.info.error = (e as Error)?.message ?? String(e);
    } finally {
      job.info.finishedAt = new Date().toISOString();
      if (job.request.removeInput) await rm(job.request.file, { force: true });
    }
  };

  const pump = () => {
    while (running < concurrency && queue.length) {
      const job = queue.shift()!;
      running++;
      job.finished = run(job).finally(() => {
        running--;
        pump();
      });
    }
  };

  return {
    start(request) {
      const id = randomUUID();
      const job: Job = {
        info: { id, name: request.name, state: 'queued', framesDone: 0, createdAt: new Date().toISOString() },
        request,
        dir: path.join(dir, id),
        abort: new AbortController(),
      };
      jobs.set(id, job);
      queue.push(job);
      pump();
      return snapshot(job);
    },
    get: (id) => {
      const job = jobs.get(id);
      return job && snapshot(job);
    },
    list: () => [...jobs.values()].map(snapshot),
    output(id, kind) {
      const job = jobs.get(id);
      return job?.info.state === 'done' ? path.join(job.dir, `labels.${kind}`) : undefined;
    },
    async remove(id) {
      const job = jobs.get(id);
      if (!job) return undefined;
      jobs.delete(id);
      const queued = queue.indexOf(job);
      if (queued >= 0) {
        queue.splice(queued, 1);
        job.info.state = 'cancelled';
        job.info.finishedAt = new Date().toISOString();
        if (job.request.removeInput) await rm(job.request.file, { force: true });
      }
      job.abort.abort();
      await job.finished;
      await rm(job.dir, { recursive: true, force: true });
      return snapshot(job);
    },
    counts() {
      const c: Record<JobState, number> = { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0 };
      for (const j of jobs.values()) c[j.info.state]++;
      return c;
    },
    async close() {
      await Promise.all([...jobs.keys()].map((id) => this.remove(id)));
    },
  };
}
