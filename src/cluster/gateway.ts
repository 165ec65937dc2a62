/**
 * A cluster gateway: the single server (src/server) over the cluster's streams (remote-engine.ts)
 * and jobs (jobs.ts), with the cluster added to `/api/health` and `/metrics`, and a clear 503
 * for changes while NATS is unreachable.
 */
import { Hono } from 'hono';
import type { ArbexServer, ServerOptions } from '../server/index.js';
import { createServer } from '../server/index.js';
import { renderMetrics, type Metric } from '../server/prometheus.js';
import { createClusterJobs, type ClusterJobs } from './jobs.js';
import type { ClusterResources } from './nats.js';
import { createRemoteEngine, type ClusterView, type RemoteEngine } from './remote-engine.js';

export interface GatewayOptions extends Omit<ServerOptions, 'engine' | 'jobs' | 'jobRunner' | 'extend'> {
  resources: ClusterResources;
  leaseMs: number;
  /** Class names to report while no worker is live. */
  classes?: readonly string[];
  log?: (line: string) => void;
}

export interface ClusterGateway {
  readonly server: ArbexServer;
  readonly engine: RemoteEngine;
  readonly jobs: ClusterJobs;
  /** The cluster as /api/health reports it. */
  health(): ClusterHealth;
  /** Closes the HTTP server and stops following the cluster; leaves the NATS connection open. */
  close(): Promise<void>;
}

export interface ClusterHealth extends ClusterView {
  queue: ReturnType<ClusterJobs['queue']>;
  /** What needs attention, in words (no workers, NATS unreachable). */
  warnings: string[];
}

function clusterMetrics(h: ClusterHealth): Metric[] {
  return [
    { name: 'arbex_cluster_nats_connected', help: 'Whether this gateway is connected to NATS.', type: 'gauge', samples: [{ value: h.connected ? 1 : 0 }] },
    { name: 'arbex_cluster_workers', help: 'Live workers (heartbeat seen within the lease time).', type: 'gauge', samples: [{ value: h.workers.length }] },
    {
      name: 'arbex_cluster_worker_streams',
      help: 'Streams each live worker runs.',
      type: 'gauge',
      samples: h.workers.map((w) => ({ labels: { worker: w.id, host: w.host }, value: w.streams })),
    },
    {
      name: 'arbex_cluster_worker_jobs',
      help: 'Jobs each live worker is labelling.',
      type: 'gauge',
      samples: h.workers.map((w) => ({ labels: { worker: w.id, host: w.host }, value: w.jobs })),
    },
    { name: 'arbex_cluster_streams', help: 'Desired streams in the cluster.', type: 'gauge', samples: [{ value: h.streams }] },
    { name: 'arbex_cluster_streams_unassigned', help: 'Desired streams no live worker holds.', type: 'gauge', samples: [{ value: h.unassigned }] },
    { name: 'arbex_cluster_job_queue_depth', help: 'Jobs waiting in the work queue.', type: 'gauge', samples: [{ value: h.queue.pending }] },
    { name: 'arbex_cluster_jobs_in_progress', help: 'Jobs delivered to a worker and not yet acknowledged.', type: 'gauge', samples: [{ value: h.queue.ackPending }] },
    { name: 'arbex_cluster_job_redeliveries_total', help: 'Job deliveries beyond the first (a worker died or gave a job back).', type: 'counter', samples: [{ value: h.queue.redelivered }] },
    { name: 'arbex_cluster_predictions_in_total', help: 'Prediction messages received from workers.', type: 'counter', samples: [{ value: h.predictionsIn }] },
    { name: 'arbex_cluster_message_bytes_in_total', help: 'Bytes of stream messages received from workers.', type: 'counter', samples: [{ value: h.messagesInBytes }] },
    { name: 'arbex_cluster_nats_reconnects_total', help: 'Reconnections to NATS.', type: 'counter', samples: [{ value: h.reconnects }] },
  ];
}

/** Copies a response with a new body (headers such as the security ones kept). */
function withBody(res: Response, body: string, type: string): Response {
  const headers = new Headers(res.headers);
  headers.set('content-type', type);
  headers.delete('content-length');
  return new Response(body, { status: res.status, headers });
}

/**
 * @example
 * const gateway = await createGateway({ resources, leaseMs: 4000, settings: { port: 8080, host: '127.0.0.1', mediaDirs } });
 * await gateway.server.listen();
 */
export async function createGateway(options: GatewayOptions): Promise<ClusterGateway> {
  const { resources, leaseMs, classes, log, ...serverOptions } = options;
  const engine = await createRemoteEngine({ resources, settings: options.settings, leaseMs, classes, log });
  const jobs = createClusterJobs({ resources, limits: serverOptions.limits, log });

  const health = (): ClusterHealth => {
    const view = engine.cluster();
    const warnings: string[] = [];
    if (!view.connected) warnings.push('NATS is unreachable: the cluster state cannot change until it is back');
    if (view.workers.length === 0) warnings.push('no worker is live: streams and jobs wait until one joins');
    else if (view.unassigned > 0) warnings.push(`${view.unassigned} streams are waiting for a worker`);
    return { ...view, queue: jobs.queue(), warnings };
  };

  const extend = (inner: Hono): Hono => {
    const outer = new Hono();
    // Changes need NATS; reads are answered from what this gateway last saw.
    outer.use('/api/*', async (c, next) => {
      if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && !engine.connected()) {
        return c.json({ error: 'cluster unavailable', detail: 'NATS is unreachable; try again shortly' }, 503, { 'retry-after': '2' });
      }
      await next();
    });
    outer.get('/api/health', async (c) => {
      const res = await inner.fetch(c.req.raw, c.env);
      if (res.status !== 200) return res;
      const body = (await res.json()) as Record<string, unknown>;
      return withBody(res, JSON.stringify({ ...body, cluster: health() }), 'application/json');
    });
    outer.get('/metrics', async (c) => {
      const res = await inner.fetch(c.req.raw, c.env);
      if (res.status !== 200) return res;
      return withBody(res, (await res.text()) + renderMetrics(clusterMetrics(health())), res.headers.get('content-type') ?? 'text/plain');
    });
    outer.all('*', (c) => inner.fetch(c.req.raw, c.env));
    return outer;
  };

  const server = createServer({ ...serverOptions, engine, jobs, extend });
  return {
    server,
    engine,
    jobs,
    health,
    async close() {
      await server.close();
      await engine.close();
    },
  };
}
