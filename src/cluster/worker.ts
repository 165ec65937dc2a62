/**
 * A cluster worker: runs the streams whose leases it holds through its own engine, publishes
 * their predictions, states and info on NATS, answers frame requests for them, and labels jobs
 * from the work queue (job-worker.ts). Which streams it runs is decided on every tick by
 * balance.ts from what it sees in the key-value buckets.
 */
import os from 'node:os';
import { Empty, type Subscription } from '@nats-io/transport-node';
import { redact } from '../ingest/index.js';
import type { Engine, StreamHandle, StreamState } from '../pipeline/types.js';
import type { JobRunner } from '../server/job-runner.js';
import { plan, type LeaseView } from './balance.js';
import { runJobs, type JobLoop } from './job-worker.js';
import { mirrorKv, type KvMirror } from './mirror.js';
import { encode, trackConnection, type ClusterResources } from './nats.js';
import type { DesiredStream, Lease, StateMessage, WorkerBeat } from './types.js';

export interface WorkerOptions {
  resources: ClusterResources;
  engine: Engine;
  /** This worker's id, unique in the cluster. */
  id: string;
  /** Streams it may run at most. */
  capacity: number;
  leaseMs: number;
  /** Labels one job (default: in this process, through `engine`). */
  jobRunner: JobRunner;
  /** Jobs labelled at once (0: this worker takes no jobs). */
  jobConcurrency?: number;
  jobMaxAttempts: number;
  jobAckWaitMs: number;
  maxJobFrames: number;
  /** How often the worker looks at the buckets and acts. */
  tickMs?: number;
  log?: (line: string) => void;
}

export interface WorkerStats {
  id: string;
  streams: string[];
  claims: number;
  releases: number;
  lostLeases: number;
  jobsDone: number;
  jobsFailed: number;
  jobsRedelivered: number;
}

export interface ClusterWorker {
  readonly id: string;
  stats(): WorkerStats;
  /** Hands every stream back (leases deleted, so others take them at once), puts a running job back in the queue, and leaves. */
  close(): Promise<void>;
}

interface Local {
  handle?: StreamHandle;
  unsubscribe?: () => void;
  /** Revision of our lease. */
  revision: number;
  /** Set when the engine refused the source. */
  error?: string;
}

/**
 * @example
 * const worker = await createWorker({ resources, engine, id: settings.workerId, capacity: 4, leaseMs: 4000, jobRunner, ... });
 */
export async function createWorker(options: WorkerOptions): Promise<ClusterWorker> {
  const { resources: r, engine, id: self, capacity, leaseMs, log = (l: string) => console.error(l) } = options;
  const tickMs = options.tickMs ?? Math.max(100, Math.min(500, leaseMs / 8));
  const { nc, names: n } = r;
  const heartbeatMs = Math.max(200, leaseMs / 4);
  const desired = mirrorKv<DesiredStream>(r.streams);
  const leases = mirrorKv<Lease>(r.leases);
  const workers = mirrorKv<WorkerBeat>(r.workers);
  const mirrors: KvMirror<unknown>[] = [desired, leases, workers] as KvMirror<unknown>[];
  const conn = trackConnection(nc, () => {
    for (const m of mirrors) m.refresh();
    void beat();
  });
  const locals = new Map<string, Local>();
  const freeSince = new Map<string, number>();
  const cooldown = new Map<string, number>();
  const counters = { claims: 0, releases: 0, lostLeases: 0 };
  const startedAt = new Date().toISOString();
  let jobs: JobLoop | undefined;
  let closed = false;
  await Promise.all([desired.ready, leases.ready, workers.ready]);

  const publish = (subject: string, data: unknown) => {
    try {
      nc.publish(subject, encode(data));
    } catch {
      // Closed connection: the stream is being shut down anyway.
    }
  };
  const publishState = (stream: string, state: StreamState, error?: string) =>
    publish(n.state(stream), { stream, state, ...(error ? { error: redact(error) } : {}), worker: self } satisfies StateMessage);

  const beat = async () => {
    const value: WorkerBeat = { id: self, host: os.hostname(), pid: process.pid, capacity, streams: locals.size, jobs: jobs?.running() ?? 0, classes: [...engine.classes], startedAt };
    await r.workers.put(self, encode(value)).catch(() => {});
  };

  const start = (stream: string, revision: number) => {
    const d = desired.get(stream)?.value;
    if (!d) return;
    const local: Local = { revision };
    locals.set(stream, local);
    try {
      local.handle = engine.openStream(d.source, { name: d.name, fps: d.fps, smoothing: d.smoothing, loop: d.loop });
    } catch (e) {
      local.error = (e as Error).message;
      publishState(stream, 'failed', local.error);
      return;
    }
    publishState(stream, 'connecting');
    local.unsubscribe = local.handle.subscribe((event) => {
      if (event.type === 'output') publish(n.pred(stream), { ...event.output, stream });
      // 'stopped' is the gateway's to say (the stream was deleted); a handover says 'reconnecting'.
      else if (event.state !== 'stopped') publishState(stream, event.state, event.error);
    });
  };

  /** Stops running a stream here; `why` is told to the clients when it moves elsewhere. */
  const stop = async (stream: string, why?: string) => {
    const local = locals.get(stream);
    if (!local) return;
    locals.delete(stream);
    local.unsubscribe?.();
    if (why) publishState(stream, 'reconnecting', why);
    await local.handle?.stop().catch(() => {});
  };

  const leaseValue = () => encode({ worker: self, since: new Date().toISOString() } satisfies Lease);

  const release = async (stream: string, why?: string) => {
    const rev = locals.get(stream)?.revision;
    await stop(stream, why);
    if (rev !== undefined) await r.leases.delete(stream, { previousSeq: rev }).catch(() => {});
  };

  const claim = async (stream: string, revision: number | undefined) => {
    try {
      const value = leaseValue();
      const rev = revision === undefined ? await r.leases.create(stream, value) : await r.leases.update(stream, value, revision);
      leases.set(stream, { worker: self, since: new Date().toISOString() }, rev);
      counters.claims++;
      log(`arbex: worker ${self} runs stream ${stream}${revision === undefined ? '' : ' (its lease had expired)'}`);
      start(stream, rev);
    } catch {
      // Someone else was faster: the compare-and-set refused this one.
    }
  };

  let lastRenew = 0;
  const renew = async () => {
    lastRenew = Date.now();
    await Promise.all(
      [...locals].map(async ([stream, local]) => {
        try {
          local.revision = await r.leases.update(stream, leaseValue(), local.revision);
          leases.set(stream, { worker: self, since: new Date().toISOString() }, local.revision);
        } catch (e) {
          if (!conn.up || /timeout|disconnect|closed/i.test((e as Error).message)) return; // NATS away: try again; nobody can take it meanwhile
          counters.lostLeases++;
          log(`arbex: worker ${self} lost the lease of stream ${stream} (${(e as Error).message})`);
          await stop(stream);
        }
      }),
    );
  };

  const tick = async () => {
    if (!conn.up) return;
    if (Date.now() - lastRenew >= leaseMs / 3) await renew();
    const now = Date.now();
    const leaseViews = new Map<string, LeaseView>(leases.entries().map(([k, e]) => [k, { worker: e.value.worker, revision: e.revision, seenAt: e.seenAt }]));
    const peers = new Map<string, { capacity: number }>();
    for (const [k, e] of workers.entries()) if (k !== self && now - e.seenAt < leaseMs) peers.set(k, { capacity: e.value.capacity });
    const p = plan({
      self,
      now,
      leaseMs,
      claimGraceMs: Math.max(500, leaseMs / 2),
      capacity,
      desired: desired.entries().filter(([, e]) => !e.value.stopped).map(([k]) => k),
      leases: leaseViews,
      peers,
      mine: new Set(locals.keys()),
      freeSince,
      cooldown,
    });
    for (const s of p.drop) await release(s);
    for (const s of p.lost) {
      counters.lostLeases++;
      await stop(s);
    }
    for (const s of p.release) {
      counters.releases++;
      log(`arbex: worker ${self} hands stream ${s} over (balancing)`);
      cooldown.set(s, now + 3 * leaseMs);
      await release(s, `moving to another worker (balancing, ${self} hands it over)`);
    }
    for (const c of p.claim) await claim(c.stream, c.revision);
  };

  const publishInfo = () => {
    for (const [stream, local] of locals) {
      const d = desired.get(stream)?.value;
      if (local.handle) publish(n.info(stream), { ...local.handle.info(), id: stream, worker: self });
      else if (d) publish(n.info(stream), { id: stream, name: d.name, source: d.source, state: 'failed', lastError: local.error, fpsIn: 0, fpsOut: 0, framesIn: 0, framesOut: 0, drops: 0, faces: 0, startedAt: d.createdAt, worker: self });
    }
  };

  const frames: Subscription = nc.subscribe(n.wildcard('frame'), {
    callback: (err, msg) => {
      if (err) return;
      const stream = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
      const handle = locals.get(stream)?.handle;
      if (!handle) return; // not ours: the worker that runs it answers
      handle
        .latestJpeg()
        .then((jpeg) => msg.respond(jpeg ? new Uint8Array(jpeg) : Empty))
        .catch(() => msg.respond(Empty));
    },
  });

  await beat();
  let ticking = false;
  const timer = setInterval(() => {
    if (ticking || closed) return;
    ticking = true;
    tick()
      .catch((e: Error) => log(`arbex: worker ${self} tick failed: ${e.message}`))
      .finally(() => (ticking = false));
  }, tickMs);
  const beatTimer = setInterval(() => void beat(), heartbeatMs);
  const infoTimer = setInterval(publishInfo, 1000);

  if ((options.jobConcurrency ?? 1) > 0) {
    jobs = runJobs({
      resources: r,
      worker: self,
      runner: options.jobRunner,
      maxAttempts: options.jobMaxAttempts,
      ackWaitMs: options.jobAckWaitMs,
      maxJobFrames: options.maxJobFrames,
      concurrency: options.jobConcurrency ?? 1,
      log,
    });
  }
  log(`arbex: worker ${self} joined (capacity ${capacity} streams, lease ${leaseMs} ms)`);

  return {
    id: self,
    stats: () => ({ id: self, streams: [...locals.keys()], ...counters, ...(jobs?.stats() ?? { jobsDone: 0, jobsFailed: 0, jobsRedelivered: 0 }) }),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      clearInterval(beatTimer);
      clearInterval(infoTimer);
      while (ticking) await new Promise((res) => setTimeout(res, 20));
      await jobs?.close();
      frames.unsubscribe();
      await Promise.all([...locals.keys()].map((s) => release(s, `moving to another worker (${self} is shutting down)`)));
      await r.workers.delete(self).catch(() => {});
      for (const m of mirrors) m.close();
    },
  };
}
