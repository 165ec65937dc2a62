/**
 * Labelling jobs for recorded videos. Each job is stored in its own folder (job-store.ts) from
 * the moment it is accepted, so a restart lists every job: finished ones with their labels,
 * unfinished ones queued again (a job found running, i.e. interrupted by a crash, at most
 * `maxAttempts` times). A job's input is opened and checked once, on submission (media.ts), and
 * read through that handle. Jobs run one at a time by default: they share the machine with the
 * live streams, and running two at once would only split its throughput and make every ETA wrong.
 * Where they run is the runner's business: in a job process under `arbex serve`
 * (job-process.ts), so that labelling never blocks the API.
 */
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { DEFAULT_LIMITS, type Limits } from '../env.js';
import type { SmoothingSpec } from '../pipeline/types.js';
import { createEmitter } from '../pipeline/events.js';
import { HttpError, storageError } from './errors.js';
import type { JobRunner } from './job-runner.js';
import { createJobStore, type JobRecord } from './job-store.js';
import { openChecked, type OpenedFile } from './media.js';
import type { JobInfo, JobState } from './schemas.js';

export type { JobInfo, JobState };

/** What the jobs tell their listeners, so that nobody needs to poll them. */
export type JobEvent = { type: 'job'; job: JobInfo } | { type: 'removed'; id: string };

/** Bytes of an upload in progress, counted against the budget shared with the queued uploads. */
export interface UploadReservation {
  readonly bytes: number;
  /** Counts `n` more bytes; throws a 429 HttpError when the budget is exceeded. */
  add(n: number): void;
  /** Gives the bytes back (the upload failed, or its job now holds them). */
  release(): void;
}

/**
 * The upload budget: bytes of uploads in progress (reservations) plus `queuedBytes()` (the inputs
 * queued jobs still hold) may not pass `limit`; past it a reservation throws a 429.
 *
 * @example
 * const budget = createUploadBudget(limits.maxQueuedUploadBytes, () => bytesOfQueuedInputs);
 * const upload = budget.reserve();
 * upload.add(chunk.length);   // throws HttpError 429 over the limit
 */
export function createUploadBudget(limit: number, queuedBytes: () => number) {
  let reserved = 0;
  const held = () => reserved + queuedBytes();
  const tooMany = () => new HttpError(429, 'too many uploads', `uploads waiting to be labelled hold ${limit} bytes, the limit; try again when some jobs have run`);
  return {
    /** Throws the 429 when the budget is already used up. */
    assertRoom(): void {
      if (held() >= limit) throw tooMany();
    },
    reserve(): UploadReservation {
      let bytes = 0;
      let released = false;
      return {
        get bytes() {
          return bytes;
        },
        add(n) {
          if (released) return;
          bytes += n;
          reserved += n;
          if (held() > limit) throw tooMany();
        },
        release() {
          if (released) return;
          released = true;
          reserved -= bytes;
        },
      };
    },
  };
}

export interface JobRequest {
  /** The video, opened and checked; the job closes it when it ends. */
  input: OpenedFile;
  name: string;
  smoothing?: SmoothingSpec;
  detectEvery?: number;
  /** For an upload: the input (a file of the server's own) moves into the job's folder, its bytes stay counted until the job ends. */
  upload?: UploadReservation;
}

export type JobLimits = Pick<Limits, 'maxQueuedJobs' | 'maxQueuedUploadBytes' | 'maxJobFrames' | 'keepJobs' | 'keepJobsMs'>;

export interface JobsOptions {
  runner: JobRunner;
  /** Folder that receives one sub-folder per job. */
  dir: string;
  /** Opens a stored job's media file again after a restart, with the checks of a submission. */
  openMedia(file: string): Promise<OpenedFile>;
  limits?: Partial<JobLimits>;
  /** Jobs labelled at the same time. */
  concurrency?: number;
  /** Runs of one job that crashes may interrupt before it is failed rather than queued again. */
  maxAttempts?: number;
  log?: (line: string) => void;
}

export interface Jobs {
  /** Loads the stored jobs, reclaims what a crash left and queues the unfinished ones. Call once, first. */
  restore(): Promise<void>;
  /** Accepts a job (429 when the queue is full); it is stored before this resolves. Owns `input` from then on, even on failure. */
  start(request: JobRequest): Promise<JobInfo>;
  /** Starts counting an upload's bytes (429 from `add` beyond the budget). */
  reserveUpload(): UploadReservation;
  /** Throws the 429 that `start` (or, for an upload, its reservation) would throw now, so that a body is refused before it is read. */
  assertRoom(upload?: boolean): void;
  get(id: string): JobInfo | undefined;
  list(): JobInfo[];
  /** Path of a finished job's output, or undefined while it is not done (a promise where the labels are fetched first, as in a cluster). */
  output(id: string, kind: 'csv' | 'jsonl'): string | undefined | Promise<string | undefined>;
  /** Cancels a queued or running job, waits for it to stop, deletes its files and forgets it. */
  remove(id: string): Promise<JobInfo | undefined>;
  /** Counts by state, for /metrics. */
  counts(): Record<JobState, number>;
  /** Listens to every job's changes (progress at most twice a second); returns the function that stops listening. */
  subscribe(listener: (event: JobEvent) => void): () => void;
  /** Stops running jobs and leaves them queued for the next start; deletes nothing. */
  close(): Promise<void>;
}

interface Job {
  record: JobRecord;
  /** Open while the job is unfinished. */
  input?: OpenedFile;
  /** Its uploaded input counts against the upload budget (until it ends). */
  holdsUpload?: boolean;
  abort?: AbortController;
  /** Why a running job is being stopped. */
  stopping?: 'cancel' | 'shutdown';
  startedMs?: number;
  /** The running attempt. */
  finished?: Promise<void>;
}

const FINISHED: JobState[] = ['done', 'failed', 'cancelled'];
const INPUT = 'input';
const PRUNE_EVERY_MS = 3600_000;
const DEFAULTS = { concurrency: 1, maxAttempts: 3, log: (line: string) => console.error(line) };
/** Progress of a running job is told at most this often. */
const PROGRESS_EVERY_MS = 500;

/**
 * @example
 * const jobs = createJobs({ runner: inProcessRunner(engine), dir: 'data/server/jobs', openMedia: (f) => openMediaFile(f, mediaDirs) });
 * await jobs.restore();
 * const job = await jobs.start({ input: await openMediaFile('clip.mp4', mediaDirs), name: 'clip.mp4' });
 */
export function createJobs(options: JobsOptions): Jobs {
  const { runner, dir, openMedia, concurrency, maxAttempts, log } = { ...DEFAULTS, ...options };
  const limits: JobLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const store = createJobStore({ dir });
  const jobs = new Map<string, Job>();
  const queue: Job[] = [];
  let running = 0;
  /** Bytes of uploads in progress. */
  /** Bytes of the inputs of unfinished uploaded jobs. */
  let jobUploadBytes = 0;
  let closed = false;
  let pruneTimer: NodeJS.Timeout | undefined;
  const events = createEmitter<JobEvent>((e) => log(`arbex: job listener failed: ${e.message}`));

  const info = (job: Job) => job.record.info;
  const now = () => new Date().toISOString();
  const save = (job: Job) => {
    events.emit({ type: 'job', job: snapshot(job) });
    return store.save(job.record).catch((e: Error) => log(`arbex: could not save job ${info(job).id}: ${e.message}`));
  };
  const forget = (id: string) => {
    jobs.delete(id);
    events.emit({ type: 'removed', id });
  };

  const snapshot = (job: Job): JobInfo => {
    const out: JobInfo = { ...info(job) };
    if (out.framesTotal) out.progress = Math.min(1, out.framesDone / out.framesTotal);
    if (out.state === 'running' && out.framesTotal && out.framesDone > 0 && job.startedMs !== undefined) {
      const perFrame = (Date.now() - job.startedMs) / 1000 / out.framesDone;
      out.etaSeconds = Math.max(0, Math.round(perFrame * (out.framesTotal - out.framesDone) * 10) / 10);
    }
    return out;
  };

  const uploads = createUploadBudget(limits.maxQueuedUploadBytes, () => jobUploadBytes);
  const holdUpload = (job: Job) => {
    job.holdsUpload = true;
    jobUploadBytes += job.record.request.uploadBytes ?? 0;
  };

  /** Closes the input; an upload's copy is deleted, since the labels are all that is kept. */
  const releaseInput = async (job: Job) => {
    await job.input?.close();
    job.input = undefined;
    if (job.holdsUpload) jobUploadBytes -= job.record.request.uploadBytes ?? 0;
    job.holdsUpload = false;
    if (job.record.request.media === undefined) await rm(path.join(store.dirOf(info(job).id), INPUT), { force: true });
  };

  const end = async (job: Job, state: JobState, error?: string) => {
    info(job).state = state;
    info(job).finishedAt = now();
    if (error !== undefined) info(job).error = error;
    await releaseInput(job);
    await save(job);
  };

  const prune = async () => {
    const finished = [...jobs.values()]
      .filter((j) => FINISHED.includes(info(j).state))
      .sort((a, b) => (info(b).finishedAt ?? '').localeCompare(info(a).finishedAt ?? ''));
    const oldest = Date.now() - limits.keepJobsMs;
    for (const [i, job] of finished.entries()) {
      if (i < limits.keepJobs && Date.parse(info(job).finishedAt ?? '') >= oldest) continue;
      forget(info(job).id);
      await store.remove(info(job).id).catch((e: Error) => log(`arbex: could not delete job ${info(job).id}: ${e.message}`));
    }
  };

  const run = async (job: Job) => {
    const i = info(job);
    i.state = 'running';
    i.framesDone = 0;
    job.startedMs = Date.now();
    i.startedAt = new Date(job.startedMs).toISOString();
    job.record.attempts++;
    job.abort = new AbortController();
    let toldMs = 0;
    await save(job);
    try {
      const { frames } = await runner(
        {
          input: job.input!.readPath,
          name: i.name,
          outDir: store.dirOf(i.id),
          smoothing: job.record.request.smoothing,
          detectEvery: job.record.request.detectEvery,
          maxFrames: limits.maxJobFrames,
        },
        {
          signal: job.abort.signal,
          onProgress: (done, total) => {
            i.framesDone = Math.max(i.framesDone, done);
            if (total !== undefined) i.framesTotal = total;
            if (Date.now() - toldMs < PROGRESS_EVERY_MS) return;
            toldMs = Date.now();
            events.emit({ type: 'job', job: snapshot(job) });
          },
        },
      );
      i.framesDone = i.framesTotal = frames;
      await end(job, 'done');
    } catch (e) {
      if (job.stopping === 'shutdown') {
        // Not the job's fault: it runs again, from the start, after the restart.
        Object.assign(i, { state: 'queued', framesDone: 0, startedAt: undefined });
        job.record.attempts--;
        await save(job);
      } else if (job.stopping === 'cancel') {
        await end(job, 'cancelled');
      } else {
        await end(job, 'failed', (e as Error)?.message ?? String(e));
      }
    }
  };

  const pump = () => {
    while (!closed && running < concurrency && queue.length) {
      const job = queue.shift()!;
      running++;
      job.finished = run(job).finally(() => {
        running--;
        void prune().finally(pump);
      });
    }
  };

  const assertRoom = (upload = false) => {
    if (queue.length >= limits.maxQueuedJobs) {
      throw new HttpError(429, 'too many jobs', `${queue.length} jobs are queued, the limit is ${limits.maxQueuedJobs}; try again when some have run`);
    }
    if (upload) uploads.assertRoom();
  };

  return {
    async restore() {
      const { records, reclaimed, unreadable } = await store.load();
      for (const d of unreadable) log(`arbex: ${d}/job.json cannot be read; that folder is left alone`);
      let requeued = 0;
      for (const record of records.sort((a, b) => a.info.createdAt.localeCompare(b.info.createdAt))) {
        const job: Job = { record };
        const i = record.info;
        jobs.set(i.id, job);
        if (FINISHED.includes(i.state)) continue;
        if (i.state === 'running' && record.attempts >= maxAttempts) {
          await end(job, 'failed', `interrupted ${record.attempts} times by the server dying while it ran; not run again`);
          continue;
        }
        Object.assign(i, { state: 'queued', framesDone: 0, startedAt: undefined });
        try {
          const media = record.request.media;
          job.input = media !== undefined ? await openMedia(media) : await openChecked(path.join(store.dirOf(i.id), INPUT));
        } catch (e) {
          await end(job, 'failed', `its input is no longer available: ${(e as HttpError).detail ?? (e as Error).message}`);
          continue;
        }
        await save(job);
        if (record.request.uploadBytes !== undefined) holdUpload(job);
        queue.push(job);
        requeued++;
      }
      if (records.length || reclaimed) log(`arbex: ${records.length} stored jobs, ${requeued} queued again, ${reclaimed} stale files reclaimed`);
      await prune();
      pruneTimer = setInterval(() => void prune(), PRUNE_EVERY_MS).unref();
      pump();
    },
    async start(request) {
      const id = randomUUID();
      const { input, name, smoothing, detectEvery, upload } = request;
      const record: JobRecord = {
        info: { id, name, state: 'queued', framesDone: 0, createdAt: now() },
        request: { ...(upload ? { uploadBytes: upload.bytes } : { media: input.path }), smoothing, detectEvery },
        attempts: 0,
      };
      try {
        assertRoom();
        try {
          await store.create(id);
          if (upload) await rename(input.path, path.join(store.dirOf(id), INPUT));
          await store.save(record);
        } catch (e) {
          await store.remove(id).catch(() => {});
          throw storageError('the job', e as NodeJS.ErrnoException);
        }
      } catch (e) {
        await input.close();
        throw e;
      }
      const job: Job = { record, input };
      if (upload) {
        upload.release();
        holdUpload(job);
      }
      jobs.set(id, job);
      events.emit({ type: 'job', job: snapshot(job) });
      queue.push(job);
      pump();
      return snapshot(job);
    },
    reserveUpload: () => uploads.reserve(),
    assertRoom,
    get: (id) => {
      const job = jobs.get(id);
      return job && snapshot(job);
    },
    list: () => [...jobs.values()].map(snapshot),
    output(id, kind) {
      const job = jobs.get(id);
      return job && info(job).state === 'done' ? path.join(store.dirOf(id), `labels.${kind}`) : undefined;
    },
    async remove(id) {
      const job = jobs.get(id);
      if (!job) return undefined;
      forget(id);
      const queued = queue.indexOf(job);
      if (queued >= 0) {
        queue.splice(queued, 1);
        info(job).state = 'cancelled';
        info(job).finishedAt = now();
      }
      if (info(job).state === 'running') {
        job.stopping = 'cancel';
        job.abort?.abort();
        await job.finished;
      }
      await releaseInput(job);
      await store.remove(id);
      return snapshot(job);
    },
    subscribe: events.subscribe,
    counts() {
      const c: Record<JobState, number> = { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0 };
      for (const j of jobs.values()) c[info(j).state]++;
      return c;
    },
    async close() {
      closed = true;
      clearInterval(pruneTimer);
      const stopping: Promise<void>[] = [];
      for (const job of jobs.values()) {
        if (info(job).state !== 'running') continue;
        job.stopping = 'shutdown';
        job.abort?.abort();
        if (job.finished) stopping.push(job.finished);
      }
      await Promise.all(stopping);
      await Promise.all([...jobs.values()].map((j) => j.input?.close()));
    },
  };
}
