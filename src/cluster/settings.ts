/**
 * The cluster's settings, read from the environment like src/env.ts reads the server's (and in
 * the same style: one function, plain values out, so tests pass their own). Credentials come
 * only from here: nothing in the cluster code holds a user, password, token or key of its own.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';

export type ClusterRole = 'gateway' | 'worker' | 'all';

/** How this process authenticates to NATS (all optional; the server decides what it needs). */
export interface NatsAuth {
  user?: string;
  pass?: string;
  token?: string;
  /** An nkey seed (`SU...`), or a file holding one. */
  nkeySeed?: string;
  /** A `.creds` file (JWT + nkey seed), as `nsc` writes them. */
  credsFile?: string;
}

export interface NatsTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface ClusterSettings {
  /** NATS server URL(s), comma-separated (`nats://host:4222`); unset: no cluster. */
  natsUrl?: string;
  role: ClusterRole;
  auth: NatsAuth;
  /** TLS to NATS; unset: TLS only when the URL is `tls://` or the server requires it. */
  tls?: NatsTls;
  /** Names every bucket, stream and subject (`<prefix>.pred.<stream>`); several clusters can share one NATS. */
  prefix: string;
  /** This process's worker id (unique in the cluster). */
  workerId: string;
  /** A stream lease not renewed for this long is taken over; renewed every third of it. */
  leaseMs: number;
  /** A job a worker stopped reporting on for this long is delivered again to another worker. */
  jobAckWaitMs: number;
  /** Runs of one job that a dying worker may interrupt before it is failed. */
  jobMaxAttempts: number;
  /** Desired streams in the whole cluster (429 beyond). */
  maxStreams: number;
  /** Bytes the object store keeps for finished labels. */
  labelsMaxBytes: number;
  /** Copies JetStream keeps of every bucket, store and stream (1; 3 on a three-node NATS cluster). */
  replicas: number;
}

const MiB = 1024 * 1024;

function count(name: string, v: string | undefined, fallback: number, min = 1): number {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be a whole number >= ${min} (got "${v}")`);
  return n;
}

export function parseRole(v: string | undefined, fallback: ClusterRole = 'all'): ClusterRole {
  if (v === undefined || v === '') return fallback;
  if (v === 'gateway' || v === 'worker' || v === 'all') return v;
  throw new Error(`the role must be gateway, worker or all (got "${v}")`);
}

/** A worker id: the host name, the pid and a few random characters (unique across restarts). */
export function defaultWorkerId(): string {
  const host = os.hostname().replace(/[^\w-]+/g, '-').slice(0, 40) || 'worker';
  return `${host}-${process.pid}-${randomBytes(2).toString('hex')}`;
}

/**
 * @example
 * const cluster = readClusterSettings(); // { natsUrl: process.env.ARBEX_NATS_URL, role: 'all', ... }
 */
export function readClusterSettings(env: NodeJS.ProcessEnv = process.env): ClusterSettings {
  const prefix = env.ARBEX_CLUSTER_PREFIX || 'arbex';
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(prefix)) throw new Error(`ARBEX_CLUSTER_PREFIX must be 1-32 letters, digits, _ or - (got "${prefix}")`);
  const workerId = env.ARBEX_WORKER_ID || defaultWorkerId();
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(workerId)) throw new Error(`ARBEX_WORKER_ID must be 1-64 letters, digits, _ or - (got "${workerId}")`);
  const tls = env.ARBEX_NATS_CA || env.ARBEX_NATS_CERT || env.ARBEX_NATS_KEY ? { caFile: env.ARBEX_NATS_CA || undefined, certFile: env.ARBEX_NATS_CERT || undefined, keyFile: env.ARBEX_NATS_KEY || undefined } : undefined;
  return {
    natsUrl: env.ARBEX_NATS_URL || undefined,
    role: parseRole(env.ARBEX_ROLE),
    auth: {
      user: env.ARBEX_NATS_USER || undefined,
      pass: env.ARBEX_NATS_PASSWORD || undefined,
      token: env.ARBEX_NATS_TOKEN || undefined,
      nkeySeed: env.ARBEX_NATS_NKEY || undefined,
      credsFile: env.ARBEX_NATS_CREDS || undefined,
    },
    tls,
    prefix,
    workerId,
    leaseMs: count('ARBEX_CLUSTER_LEASE_MS', env.ARBEX_CLUSTER_LEASE_MS, 4000, 300),
    jobAckWaitMs: count('ARBEX_CLUSTER_JOB_ACK_WAIT_MS', env.ARBEX_CLUSTER_JOB_ACK_WAIT_MS, 30_000, 1000),
    jobMaxAttempts: count('ARBEX_CLUSTER_JOB_ATTEMPTS', env.ARBEX_CLUSTER_JOB_ATTEMPTS, 3),
    maxStreams: count('ARBEX_CLUSTER_MAX_STREAMS', env.ARBEX_CLUSTER_MAX_STREAMS, 1000),
    labelsMaxBytes: count('ARBEX_CLUSTER_LABELS_MB', env.ARBEX_CLUSTER_LABELS_MB, 2048) * MiB,
    replicas: count('ARBEX_CLUSTER_REPLICAS', env.ARBEX_CLUSTER_REPLICAS, 1),
  };
}
