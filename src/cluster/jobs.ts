/**
 * The gateway's side of labelling jobs, behind the same `Jobs` interface as the single server's
 * (src/server/jobs.ts), so the job routes are the same code. A job is state in JetStream, not in
 * this process: its record in the `<prefix>-jobs` bucket, its input in the `<prefix>-media` object
 * store, its id on the work-queue stream, its labels in `<prefix>-labels` once a worker has
 * finished it (job-worker.ts). Any gateway lists, serves and deletes any job.
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { DEFAULT_LIMITS, type Limits } from '../env.js';
import { HttpError } from '../server/errors.js';
import { createUploadBudget, type JobInfo, type JobState, type Jobs } from '../server/jobs.js';
import { labelsObject } from './job-worker.js';
import { mirrorKv, type KvMirror } from './mirror.js';
import { encode, type ClusterResources } from './nats.js';
import type { ClusterJobRecord } from './types.js';

export interface ClusterJobsOptions {
  resources: ClusterResources;
  limits?: Partial<Limits>;
  /** Where downloaded labels are kept while they are served (a temporary folder by default). */
  cacheDir?: string;
  log?: (line: string) => void;
}

export interface QueueStats {
  /** Jobs waiting in the work queue. */
  pending: number;
  /** Jobs delivered to a worker and not yet acknowledged (running). */
  ackPending: number;
  /** Deliveries beyond the first (jobs whose worker died or gave them back). */
  redelivered: number;
}

export type ClusterJobs = Jobs & {
  /** The work queue, as JetStream counts it (refreshed every 2 s). */
  queue(): QueueStats;
};

const FINISHED: JobState[] = ['done', 'failed', 'cancelled'];
const PRUNE_EVERY_MS = 3600_000;

/** A failure to store something in JetStream, said as the single server says storage failures. */
function natsStorageError(what: string, e: unknown): HttpError {
  const message = (e as Error)?.message ?? String(e);
  if (/insufficient|maximum bytes|exceeded|no space/i.test(message)) return new HttpError(507, 'insufficient storage', `no space left in the cluster to store ${what}`);
  if (e instanceof HttpError) return e;
  return new HttpError(503, 'cluster unavailable', `could not store ${what} in NATS (${message})`);
}

/**
 * @example
 * const jobs = createClusterJobs({ resources, limits });
 * const server = createServer({ engine, settings, jobs });
 */
export function createClusterJobs(options: ClusterJobsOptions): ClusterJobs {
  const { resources: r, log = (l: string) => console.error(l) } = options;
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const records: KvMirror<ClusterJobRecord> = mirrorKv<ClusterJobRecord>(r.jobs);
  let queueStats: QueueStats = { pending: 0, ackPending: 0, redelivered: 0 };
  let cacheDir = options.cacheDir;
  let pruneTimer: NodeJS.Timeout | undefined;

  const refreshQueue = async () => {
    const ci = await r.jsm.consumers.info(r.names.jobStream, r.names.jobConsumer);
    queueStats = { pending: ci.num_pending, ackPending: ci.num_ack_pending, redelivered: ci.num_redelivered };
  };
  const queueTimer = setInterval(() => void refreshQueue().catch(() => {}), 2000);
  queueTimer.unref();
  void refreshQueue().catch(() => {});

  const snapshot = (rec: ClusterJobRecord): JobInfo => {
    const out: JobInfo = { ...rec.info };
    if (out.framesTotal) out.progress = Math.min(1, out.framesDone / out.framesTotal);
    if (out.state === 'running' && out.framesTotal && out.framesDone > 0 && out.startedAt) {
      const perFrame = (Date.now() - Date.parse(out.startedAt)) / 1000 / out.framesDone;
      out.etaSeconds = Math.max(0, Math.round(perFrame * (out.framesTotal - out.framesDone) * 10) / 10);
    }
    return out;
  };
  const all = () => records.entries().map(([, e]) => e.value);
  const queued = () => all().filter((j) => j.info.state === 'queued').length;
  const uploads = createUploadBudget(limits.maxQueuedUploadBytes, () => all().filter((j) => !FINISHED.includes(j.info.state)).reduce((s, j) => s + j.request.inputBytes, 0));

  const assertRoom = (upload = false) => {
    const n = queued();
    if (n >= limits.maxQueuedJobs) throw new HttpError(429, 'too many jobs', `${n} jobs are queued, the limit is ${limits.maxQueuedJobs}; try again when some have run`);
    if (upload) uploads.assertRoom();
  };

  const removeObjects = async (id: string, input?: string) => {
    await Promise.all([input ? r.media.delete(input) : undefined, r.labels.delete(labelsObject(id, 'csv')), r.labels.delete(labelsObject(id, 'jsonl'))].map((p) => p?.catch(() => {})));
  };

  const prune = async () => {
    const finished = all()
      .filter((j) => FINISHED.includes(j.info.state))
      .sort((a, b) => (b.info.finishedAt ?? '').localeCompare(a.info.finishedAt ?? ''));
    const oldest = Date.now() - limits.keepJobsMs;
    for (const [i, job] of finished.entries()) {
      if (i < limits.keepJobs && Date.parse(job.info.finishedAt ?? '') >= oldest) continue;
      await r.jobs.delete(job.info.id).catch(() => {});
      records.forget(job.info.id);
      await removeObjects(job.info.id, job.request.input);
    }
  };

  return {
    queue: () => queueStats,
    subscribe: (listener) => records.onChange((id, entry) => listener(entry ? { type: 'job', job: snapshot(entry.value) } : { type: 'removed', id })),
    async restore() {
      await records.ready;
      await prune().catch((e: Error) => log(`arbex: could not prune jobs: ${e.message}`));
      pruneTimer = setInterval(() => void prune().catch(() => {}), PRUNE_EVERY_MS).unref();
    },
    async start(request) {
      const { input, name, smoothing, detectEvery, upload } = request;
      const id = randomUUID();
      try {
        assertRoom(upload !== undefined);
        try {
          // The input goes to the object store whatever it is (an upload, a media file): workers read it there.
          const body = Readable.toWeb(createReadStream(input.readPath)) as unknown as ReadableStream<Uint8Array>;
          await r.media.put({ name: id }, body);
        } catch (e) {
          await r.media.delete(id).catch(() => {});
          throw natsStorageError('the video', e);
        }
        const record: ClusterJobRecord = {
          info: { id, name, state: 'queued', framesDone: 0, createdAt: new Date().toISOString() },
          request: { smoothing, detectEvery, input: id, inputBytes: input.size },
        };
        try {
          const revision = await r.jobs.create(id, encode(record));
          // The message id makes a publish retried after a lost answer one job, not two.
          await r.js.publish(r.names.jobSubject, id, { msgID: id });
          records.set(id, record, revision);
        } catch (e) {
          await r.jobs.delete(id).catch(() => {});
          await r.media.delete(id).catch(() => {});
          throw natsStorageError('the job', e);
        }
        return snapshot(record);
      } finally {
        upload?.release();
        await input.close();
      }
    },
    reserveUpload: () => uploads.reserve(),
    assertRoom,
    get(id) {
      const rec = records.get(id)?.value;
      return rec && snapshot(rec);
    },
    list: () =>
      all()
        .sort((a, b) => a.info.createdAt.localeCompare(b.info.createdAt))
        .map(snapshot),
    async output(id, kind) {
      const rec = records.get(id)?.value;
      if (rec?.info.state !== 'done') return undefined;
      cacheDir ??= await mkdtemp(path.join(os.tmpdir(), 'arbex-gateway-labels-'));
      await mkdir(cacheDir, { recursive: true });
      const file = path.join(cacheDir, `${id}.${kind}`);
      const data = await r.labels.getBlob(labelsObject(id, kind)).catch((e: Error) => {
        throw new HttpError(503, 'cluster unavailable', `could not read the labels from NATS (${e.message})`);
      });
      if (!data) return path.join(cacheDir, 'missing'); // answered as "labels missing"
      // Written afresh for each download and unlinked once opened by the route (see job-routes.ts).
      const tmp = `${file}.${randomUUID()}`;
      await writeFile(tmp, data);
      setTimeout(() => void rm(tmp, { force: true }), 60_000).unref();
      return tmp;
    },
    async remove(id) {
      const entry = records.get(id);
      if (!entry) return undefined;
      const rec = entry.value;
      // Deleting the record is the cancel: a worker running it sees it gone and stops.
      await r.jobs.delete(id).catch((e: Error) => {
        throw new HttpError(503, 'cluster unavailable', `could not delete the job in NATS (${e.message})`);
      });
      records.forget(id);
      await removeObjects(id, rec.request.input);
      const out = snapshot(rec);
      if (!FINISHED.includes(out.state)) Object.assign(out, { state: 'cancelled', finishedAt: new Date().toISOString() });
      return out;
    },
    counts() {
      const c: Record<JobState, number> = { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0 };
      for (const j of all()) c[j.info.state]++;
      return c;
    },
    async close() {
      clearInterval(queueTimer);
      clearInterval(pruneTimer);
      records.close();
      if (!options.cacheDir && cacheDir) await rm(cacheDir, { recursive: true, force: true });
    },
  };
}
