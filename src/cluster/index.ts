/**
 * arbex beyond one machine: gateways and workers over NATS JetStream.
 *
 * - A **gateway** serves the HTTP API, the dashboard and the WebSocket, like `arbex serve` alone;
 *   the desired streams and the jobs are state in JetStream (key-value buckets, a work-queue
 *   stream, object stores), so any gateway answers any client.
 * - A **worker** runs the pipeline: it claims streams through leases in a key-value bucket
 *   (renewed by compare-and-set on the revision, free once not renewed for `leaseMs`), publishes
 *   predictions and states on `<prefix>.pred.<stream>` / `<prefix>.state.<stream>`, and pulls
 *   labelling jobs from the work queue, acknowledging each once its labels are stored.
 * - Streams are spread evenly over the live workers (balance.ts); a joining worker takes its share.
 *
 * One factory per role, each taking a typed options object; `startAll` runs both in one process.
 *
 * @example
 * import { readClusterSettings, startGateway, startWorker } from './cluster/index.js';
 * const cluster = readClusterSettings(); // ARBEX_NATS_URL, ARBEX_NATS_USER, ...
 * const gw = await startGateway({ cluster, limits, server: { settings, ffmpeg } });
 * await gw.gateway.server.listen();
 * const w = await startWorker({ cluster, limits, engine, jobRunner, capacity: 4 });
 * // ... later
 * await w.close(); await gw.close();
 */
import { DEFAULT_LIMITS, type Limits } from '../env.js';
import type { Engine } from '../pipeline/types.js';
import { inProcessRunner, type JobRunner } from '../server/job-runner.js';
import { createGateway, type ClusterGateway, type GatewayOptions } from './gateway.js';
import { openCluster, type ClusterResources } from './nats.js';
import type { ClusterSettings } from './settings.js';
import { createWorker, type ClusterWorker } from './worker.js';

export { readClusterSettings, parseRole, type ClusterSettings, type ClusterRole, type NatsAuth, type NatsTls } from './settings.js';
export { openCluster, names, connectionOptions, type ClusterResources } from './nats.js';
export { createGateway, type ClusterGateway, type ClusterHealth, type GatewayOptions } from './gateway.js';
export { createWorker, type ClusterWorker, type WorkerOptions, type WorkerStats } from './worker.js';
export { createRemoteEngine, type RemoteEngine, type ClusterView } from './remote-engine.js';
export { createClusterJobs, type ClusterJobs } from './jobs.js';
export { plan, score } from './balance.js';
export type { DesiredStream, Lease, WorkerBeat, ClusterJobRecord } from './types.js';

/** What every role needs: how to reach the cluster, and the caps in force. */
export interface ClusterNodeOptions {
  cluster: ClusterSettings;
  /** The caps of src/env.ts; uploads held (`maxQueuedUploadBytes`) size the object store of job inputs. */
  limits?: Partial<Limits>;
  log?: (line: string) => void;
}

export interface GatewayRoleOptions extends ClusterNodeOptions {
  /** The HTTP server's options, as for `createServer` (settings, ffmpeg, probe, webDir, ws, dataDir). */
  server: Omit<GatewayOptions, 'resources' | 'leaseMs' | 'limits' | 'log'>;
}

export interface WorkerRoleOptions extends ClusterNodeOptions {
  /** The engine that runs this worker's streams. */
  engine: Engine;
  /** Labels jobs (default: in this process through `engine`; `arbex serve` uses job processes). */
  jobRunner?: JobRunner;
  /** Streams this worker may run at most (default `limits.maxStreams`). */
  capacity?: number;
  /** Jobs labelled at once (default 1; 0 = none). */
  jobConcurrency?: number;
}

export interface Running<T> {
  /** The role's object. */
  readonly node: T;
  readonly resources: ClusterResources;
  /** Leaves the cluster cleanly and closes the NATS connection. */
  close(): Promise<void>;
}

const connectFor = (options: ClusterNodeOptions, role: string) => {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  return openCluster(options.cluster, { mediaMaxBytes: limits.maxQueuedUploadBytes, labelsMaxBytes: options.cluster.labelsMaxBytes, jobAckWaitMs: options.cluster.jobAckWaitMs, replicas: options.cluster.replicas }, role);
};

/**
 * A gateway: the HTTP API over the cluster. Call `node.server.listen()` to serve.
 *
 * @example
 * const gw = await startGateway({ cluster: readClusterSettings(), server: { settings: readSettings() } });
 * const { url } = await gw.node.server.listen();
 */
export async function startGateway(options: GatewayRoleOptions): Promise<Running<ClusterGateway>> {
  const resources = await connectFor(options, 'gateway');
  const limits = { ...DEFAULT_LIMITS, ...options.limits, maxStreams: options.cluster.maxStreams };
  const node = await createGateway({ ...options.server, resources, leaseMs: options.cluster.leaseMs, limits, log: options.log });
  return {
    node,
    resources,
    async close() {
      await node.close();
      await resources.nc.drain().catch(() => {});
    },
  };
}

/**
 * A worker: runs streams and jobs for the cluster through `engine` until closed.
 *
 * @example
 * const w = await startWorker({ cluster: readClusterSettings(), engine, capacity: 4 });
 */
export async function startWorker(options: WorkerRoleOptions): Promise<Running<ClusterWorker>> {
  const resources = await connectFor(options, 'worker');
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const { cluster } = options;
  const node = await createWorker({
    resources,
    engine: options.engine,
    id: cluster.workerId,
    capacity: options.capacity ?? limits.maxStreams,
    leaseMs: cluster.leaseMs,
    jobRunner: options.jobRunner ?? inProcessRunner(options.engine),
    jobConcurrency: options.jobConcurrency,
    jobMaxAttempts: cluster.jobMaxAttempts,
    jobAckWaitMs: cluster.jobAckWaitMs,
    maxJobFrames: limits.maxJobFrames,
    log: options.log,
  });
  return {
    node,
    resources,
    async close() {
      await node.close();
      await resources.nc.drain().catch(() => {});
    },
  };
}

/**
 * Both roles in one process (`arbex serve --role all`): a gateway and a worker, each with its own connection.
 *
 * @example
 * const both = await startAll({ cluster, server: { settings }, engine });
 * await both.node.gateway.node.server.listen();
 */
export async function startAll(options: GatewayRoleOptions & WorkerRoleOptions): Promise<Running<{ gateway: Running<ClusterGateway>; worker: Running<ClusterWorker> }>> {
  const worker = await startWorker(options);
  const gateway = await startGateway(options).catch(async (e) => {
    await worker.close();
    throw e;
  });
  return {
    node: { gateway, worker },
    resources: gateway.resources,
    async close() {
      await gateway.close();
      await worker.close();
    },
  };
}
