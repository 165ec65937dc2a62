/**
 * The cluster's use of NATS: the connection (authentication and TLS from the settings, never
 * from the code), and the JetStream resources every role opens: key-value buckets for desired
 * streams, stream leases, live workers and jobs; a work-queue stream of jobs with one durable
 * consumer shared by the workers; object stores for job inputs and finished labels.
 * Creating them is idempotent, so the first process of a fresh cluster creates them and the
 * others open them.
 */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, nanos, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { redact } from '../ingest/index.js';
import type { ClusterSettings } from './settings.js';

/** Subjects and resource names under one prefix. */
export function names(prefix: string) {
  return {
    streamsBucket: `${prefix}-streams`,
    leasesBucket: `${prefix}-leases`,
    workersBucket: `${prefix}-workers`,
    jobsBucket: `${prefix}-jobs`,
    mediaStore: `${prefix}-media`,
    labelsStore: `${prefix}-labels`,
    jobStream: `${prefix.toUpperCase()}_JOBS`,
    jobConsumer: `${prefix}-workers`,
    jobSubject: `${prefix}.jobs.run`,
    /** Predictions of one stream: the FrameOutput as JSON. */
    pred: (stream: string) => `${prefix}.pred.${stream}`,
    /** State changes of one stream: `{ stream, state, error?, worker }`. */
    state: (stream: string) => `${prefix}.state.${stream}`,
    /** Once a second per running stream: its StreamInfo and worker. */
    info: (stream: string) => `${prefix}.info.${stream}`,
    /** Request/reply: the latest frame of a stream as JPEG, answered by the worker running it. */
    frame: (stream: string) => `${prefix}.frame.${stream}`,
    wildcard: (kind: 'pred' | 'state' | 'info' | 'frame') => `${prefix}.${kind}.*`,
  };
}
export type Names = ReturnType<typeof names>;

/** The connection options the settings describe. */
export function connectionOptions(settings: Pick<ClusterSettings, 'natsUrl' | 'auth' | 'tls'>, name: string): ConnectionOptions {
  const { auth, tls } = settings;
  if (!settings.natsUrl) throw new Error('no NATS URL (--nats or ARBEX_NATS_URL)');
  const opts: ConnectionOptions = {
    servers: settings.natsUrl.split(',').map((s) => s.trim()).filter(Boolean),
    name,
    // A cluster process outlives NATS restarts: it keeps trying, and waits for the first connection too.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: true,
    pingInterval: 10_000,
  };
  if (auth.user) Object.assign(opts, { user: auth.user, pass: auth.pass });
  if (auth.token) opts.token = auth.token;
  if (auth.credsFile) opts.authenticator = credsAuthenticator(readFileSync(auth.credsFile));
  else if (auth.nkeySeed) {
    const seed = auth.nkeySeed.startsWith('S') ? auth.nkeySeed : readFileSync(auth.nkeySeed, 'utf8').trim();
    opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  if (tls) opts.tls = { ...(tls.caFile ? { caFile: tls.caFile } : {}), ...(tls.certFile ? { certFile: tls.certFile } : {}), ...(tls.keyFile ? { keyFile: tls.keyFile } : {}) };
  return opts;
}

export interface ClusterResources {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  names: Names;
  streams: KV;
  leases: KV;
  workers: KV;
  jobs: KV;
  media: ObjectStore;
  labels: ObjectStore;
}

export interface ResourceLimits {
  /** Bytes of job inputs held at once (ARBEX_MAX_QUEUED_UPLOAD_MB). */
  mediaMaxBytes: number;
  labelsMaxBytes: number;
  jobAckWaitMs: number;
  /** Largest value in the key-value buckets. */
  maxValueBytes?: number;
  /** Copies of every resource in a NATS cluster (default 1). */
  replicas?: number;
}

/**
 * Connects and opens (creating where missing) every resource of the cluster.
 *
 * @example
 * const r = await openCluster(readClusterSettings(), { mediaMaxBytes: 4 << 30, labelsMaxBytes: 2 << 30, jobAckWaitMs: 30_000 }, 'gateway');
 */
export async function openCluster(settings: ClusterSettings, limits: ResourceLimits, role: string): Promise<ClusterResources> {
  const nc = await connect(connectionOptions(settings, `arbex-${role}-${settings.workerId}`)).catch((e: Error) => {
    throw new Error(`could not connect to NATS at ${redact(settings.natsUrl ?? '')}: ${e.message}`);
  });
  try {
    const n = names(settings.prefix);
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const kvm = new Kvm(js);
    const maxValueSize = limits.maxValueBytes ?? 64 * 1024;
    const replicas = limits.replicas ?? 1;
    const [streams, leases, workers, jobs] = await Promise.all([
      kvm.create(n.streamsBucket, { history: 1, replicas, maxValueSize, description: 'arbex: desired live streams' }),
      kvm.create(n.leasesBucket, { history: 1, replicas, maxValueSize: 1024, description: 'arbex: which worker runs which stream' }),
      // Entries of workers gone for good age out; liveness itself is judged on renewals (see mirror.ts).
      kvm.create(n.workersBucket, { history: 1, replicas, maxValueSize: 16 * 1024, ttl: 3600_000, description: 'arbex: live workers' }),
      kvm.create(n.jobsBucket, { history: 1, replicas, maxValueSize, description: 'arbex: labelling jobs' }),
    ]);
    const objm = new Objm(js);
    const [media, labels] = await Promise.all([
      objm.create(n.mediaStore, { storage: StorageType.File, replicas, max_bytes: limits.mediaMaxBytes, description: 'arbex: inputs of unfinished jobs' }),
      objm.create(n.labelsStore, { storage: StorageType.File, replicas, max_bytes: limits.labelsMaxBytes, description: 'arbex: labels of finished jobs' }),
    ]);
    const stream = { name: n.jobStream, subjects: [n.jobSubject], retention: RetentionPolicy.Workqueue, storage: StorageType.File, num_replicas: replicas, discard: DiscardPolicy.New, duplicate_window: nanos(120_000) };
    await jsm.streams.add(stream).catch(async (e: Error) => {
      if (!/already in use|exists/i.test(e.message)) throw e;
    });
    const consumer = {
      durable_name: n.jobConsumer,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(limits.jobAckWaitMs),
      // Redeliveries are counted and capped by the workers themselves (a job interrupted too often fails).
      max_deliver: -1,
      max_ack_pending: 1000,
    };
    await jsm.consumers.add(n.jobStream, consumer).catch(async (e: Error) => {
      if (!/already in use|exists/i.test(e.message)) throw e;
      await jsm.consumers.update(n.jobStream, n.jobConsumer, { ack_wait: consumer.ack_wait });
    });
    return { nc, js, jsm, names: n, streams, leases, workers, jobs, media, labels };
  } catch (e) {
    await nc.close().catch(() => {});
    throw e;
  }
}

/** Follows the connection's state: `up` is false while NATS is unreachable; `onReconnect` runs after each reconnection. */
export function trackConnection(nc: NatsConnection, onReconnect: () => void = () => {}) {
  const state = { up: true, reconnects: 0, disconnects: 0 };
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        state.up = false;
        state.disconnects++;
      } else if (s.type === 'reconnect') {
        state.up = true;
        state.reconnects++;
        onReconnect();
      } else if (s.type === 'close') state.up = false;
    }
  })().catch(() => {});
  return state;
}

export const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
export const decode = <T>(data: Uint8Array): T => JSON.parse(new TextDecoder().decode(data)) as T;
