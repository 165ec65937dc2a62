/**
 * The worker's side of labelling jobs: pulls job ids from the work-queue stream (one durable
 * consumer shared by every worker, so each job goes to one of them), labels the input from the
 * object store with the same JobRunner as `arbex serve` (labelJob, in a job process), stores the
 * labels in the object store and only then marks the job done and acknowledges it.
 *
 * While a job runs the worker tells JetStream it is still working (every third of the ack wait);
 * a worker that dies stops doing so and the job is delivered again to another worker after the
 * ack wait, from the start. Labels are stored under the job's id, so a job that ran twice still
 * has one output. A job delivered more than `maxAttempts` times is failed instead of run again.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { JsMsg } from '@nats-io/jetstream';
import type { JobRunner } from '../server/job-runner.js';
import { decode, encode, type ClusterResources } from './nats.js';
import type { ClusterJobRecord } from './types.js';

export interface JobLoopOptions {
  resources: ClusterResources;
  worker: string;
  runner: JobRunner;
  maxAttempts: number;
  ackWaitMs: number;
  maxJobFrames: number;
  concurrency: number;
  log: (line: string) => void;
}

export interface JobLoop {
  running(): number;
  stats(): { jobsDone: number; jobsFailed: number; jobsRedelivered: number };
  /** Stops pulling; a running job is stopped and handed back to the queue at once (nak). */
  close(): Promise<void>;
}

const FINISHED = ['done', 'failed', 'cancelled'];

/** Object names of a job's labels in `<prefix>-labels`. */
export const labelsObject = (job: string, kind: 'csv' | 'jsonl') => `${job}/labels.${kind}`;

export function runJobs(options: JobLoopOptions): JobLoop {
  const { resources: r, worker, runner, maxAttempts, ackWaitMs, maxJobFrames, concurrency, log } = options;
  const { names: n } = r;
  const stats = { jobsDone: 0, jobsFailed: 0, jobsRedelivered: 0 };
  const active = new Set<AbortController>();
  let closed = false;
  const stopAll = new AbortController();

  const getRecord = async (id: string) => {
    const e = await r.jobs.get(id);
    return e && e.operation === 'PUT' ? { record: decode<ClusterJobRecord>(e.value), revision: e.revision } : undefined;
  };

  const handle = async (msg: JsMsg) => {
    const id = msg.string();
    const found = await getRecord(id);
    // Deleted (cancelled) or already finished by an earlier delivery: nothing to do.
    if (!found || FINISHED.includes(found.record.info.state)) return msg.ack();
    const { record } = found;
    const attempt = msg.info.deliveryCount;
    if (attempt > 1) stats.jobsRedelivered++;
    const save = async () => {
      await r.jobs.put(id, encode(record));
    };
    if (attempt > maxAttempts) {
      Object.assign(record.info, { state: 'failed', finishedAt: new Date().toISOString(), error: `interrupted ${attempt - 1} times by workers dying while it ran; not run again` });
      await save();
      await r.media.delete(record.request.input).catch(() => {});
      stats.jobsFailed++;
      return msg.ack();
    }
    const startedMs = Date.now();
    Object.assign(record.info, { state: 'running', framesDone: 0, startedAt: new Date(startedMs).toISOString(), worker, attempts: attempt });
    delete record.info.error;
    record.startedMs = startedMs;
    await save();
    log(`arbex: worker ${worker} runs job ${id} (attempt ${attempt})`);

    const abort = new AbortController();
    active.add(abort);
    const onStop = () => abort.abort();
    stopAll.signal.addEventListener('abort', onStop);
    const keepAlive = setInterval(() => msg.working(), Math.max(200, ackWaitMs / 3));
    const dir = await mkdtemp(path.join(os.tmpdir(), 'arbex-cluster-job-'));
    let cancelled = false;
    let progressAt = 0;
    try {
      const input = path.join(dir, 'input');
      const obj = await r.media.get(record.request.input);
      if (!obj) throw new Error('its input is no longer in the object store');
      await pipeline(Readable.fromWeb(obj.data as import('node:stream/web').ReadableStream<Uint8Array>), createWriteStream(input));
      const objError = await obj.error;
      if (objError) throw objError;
      const { frames } = await runner(
        { input, name: record.info.name, outDir: dir, smoothing: record.request.smoothing, detectEvery: record.request.detectEvery, maxFrames: maxJobFrames },
        {
          signal: abort.signal,
          onProgress: (done, total) => {
            record.info.framesDone = Math.max(record.info.framesDone, done);
            if (total !== undefined) record.info.framesTotal = total;
            const now = Date.now();
            if (now - progressAt < 1000) return;
            progressAt = now;
            // Progress for the gateways; a job deleted meanwhile (cancelled) is stopped.
            void getRecord(id).then(async (latest) => {
              if (!latest) {
                cancelled = true;
                abort.abort();
              } else if (!abort.signal.aborted) await save();
            }).catch(() => {});
          },
        },
      );
      // The output is stored before the job is marked done and acknowledged.
      for (const kind of ['csv', 'jsonl'] as const) {
        const body = Readable.toWeb(createReadStream(path.join(dir, `labels.${kind}`))) as unknown as ReadableStream<Uint8Array>;
        await r.labels.put({ name: labelsObject(id, kind) }, body);
      }
      if (!(await getRecord(id))) {
        cancelled = true; // deleted while it ran: its labels go too
        throw new Error('cancelled');
      }
      Object.assign(record.info, { state: 'done', framesDone: frames, framesTotal: frames, finishedAt: new Date().toISOString() });
      await save();
      await r.media.delete(record.request.input).catch(() => {});
      stats.jobsDone++;
      msg.ack();
      log(`arbex: worker ${worker} finished job ${id} (${frames} frames)`);
    } catch (e) {
      if (cancelled) {
        await Promise.all([r.labels.delete(labelsObject(id, 'csv')), r.labels.delete(labelsObject(id, 'jsonl'))].map((p) => p.catch(() => {})));
        msg.ack();
      } else if (stopAll.signal.aborted) {
        // This worker is shutting down: the job goes back to the queue for another worker now.
        Object.assign(record.info, { state: 'queued', framesDone: 0 });
        await save().catch(() => {});
        msg.nak();
      } else {
        Object.assign(record.info, { state: 'failed', finishedAt: new Date().toISOString(), error: (e as Error)?.message ?? String(e) });
        await save().catch(() => {});
        await r.media.delete(record.request.input).catch(() => {});
        stats.jobsFailed++;
        msg.ack();
      }
    } finally {
      clearInterval(keepAlive);
      stopAll.signal.removeEventListener('abort', onStop);
      active.delete(abort);
      await rm(dir, { recursive: true, force: true });
    }
  };

  const loop = async () => {
    while (!closed) {
      try {
        const consumer = await r.js.consumers.get(n.jobStream, n.jobConsumer);
        while (!closed) {
          const msg = await consumer.next({ expires: 2000 });
          if (!msg) continue;
          if (closed) {
            msg.nak();
            break;
          }
          await handle(msg).catch((e: Error) => {
            log(`arbex: worker ${worker} job ${msg.string()}: ${e.message}`);
            msg.nak(1000);
          });
        }
      } catch {
        // NATS away or the consumer not there yet: try again shortly.
        if (!closed) await new Promise((res) => setTimeout(res, 500));
      }
    }
  };
  const loops = Array.from({ length: concurrency }, () => loop());

  return {
    running: () => active.size,
    stats: () => ({ ...stats }),
    async close() {
      closed = true;
      stopAll.abort();
      await Promise.all(loops);
    },
  };
}
