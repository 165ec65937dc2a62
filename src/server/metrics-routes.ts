/** /metrics: the Prometheus text exposition of the streams, the WebSocket, the jobs, the HTTP traffic and the engine. */
import { Hono } from 'hono';
import type { Engine } from '../pipeline/types.js';
import { publicInfo, type Hub } from './hub.js';
import type { Jobs } from './jobs.js';
import { metricName, renderMetrics, type Metric } from './prometheus.js';

/** What the app counts as it answers. */
export interface Traffic {
  readonly startedMs: number;
  /** Responses by status code. */
  readonly requests: Map<string, number>;
  /** Bytes of video received by upload. */
  uploadedBytes: number;
}

export interface MetricsRoutesDeps {
  engine: Pick<Engine, 'streams' | 'metrics'>;
  hub: Pick<Hub, 'stats'>;
  jobs: Pick<Jobs, 'counts'>;
  traffic: Traffic;
}

/**
 * @example
 * app.route('/', metricsRoutes({ engine, hub, jobs, traffic }));
 */
export function metricsRoutes({ engine, hub, jobs, traffic }: MetricsRoutesDeps): Hono {
  const app = new Hono();
  app.get('/metrics', (c) => {
    const { requests, uploadedBytes } = traffic;
    const infos = engine.streams().map((h) => publicInfo(h.info()));
    const perStream = (name: string, help: string, type: Metric['type'], value: (i: (typeof infos)[number]) => number): Metric => ({
      name,
      help,
      type,
      samples: infos.map((i) => ({ labels: { stream: i.id, name: i.name }, value: value(i) })),
    });
    const ws = hub.stats();
    const jobCounts = jobs.counts();
    const metrics: Metric[] = [
      { name: 'arbex_uptime_seconds', help: 'Seconds since the server started.', type: 'gauge', samples: [{ value: (Date.now() - traffic.startedMs) / 1000 }] },
      perStream('arbex_stream_frames_in_total', 'Frames decoded per stream.', 'counter', (i) => i.framesIn),
      perStream('arbex_stream_frames_out_total', 'Frames predicted per stream.', 'counter', (i) => i.framesOut),
      perStream('arbex_stream_drops_total', 'Frames dropped because the pipeline was behind.', 'counter', (i) => i.drops),
      perStream('arbex_stream_faces', 'Faces in the latest frame.', 'gauge', (i) => i.faces),
      perStream('arbex_stream_fps_in', 'Decoded frames per second.', 'gauge', (i) => i.fpsIn),
      perStream('arbex_stream_fps_out', 'Predicted frames per second.', 'gauge', (i) => i.fpsOut),
      {
        name: 'arbex_streams',
        help: 'Streams by state.',
        type: 'gauge',
        samples: [...new Set(infos.map((i) => i.state))].map((state) => ({ labels: { state }, value: infos.filter((i) => i.state === state).length })),
      },
      { name: 'arbex_ws_clients', help: 'Connected WebSocket clients.', type: 'gauge', samples: [{ value: ws.clients }] },
      { name: 'arbex_ws_messages_sent_total', help: 'WebSocket messages sent.', type: 'counter', samples: [{ value: ws.messagesSent }] },
      { name: 'arbex_ws_frames_dropped_total', help: 'Predictions dropped for slow WebSocket clients.', type: 'counter', samples: [{ value: ws.framesDropped }] },
      { name: 'arbex_ws_clients_timed_out_total', help: 'WebSocket clients dropped by the heartbeat.', type: 'counter', samples: [{ value: ws.clientsTimedOut }] },
      { name: 'arbex_ws_rejected_upgrades_total', help: 'WebSocket upgrades refused (host, origin, path or token).', type: 'counter', samples: [{ value: ws.rejectedUpgrades }] },
      { name: 'arbex_ws_queue_depth', help: 'Messages waiting in WebSocket send queues.', type: 'gauge', samples: [{ value: ws.queueDepth }] },
      { name: 'arbex_ws_buffered_bytes', help: 'Bytes buffered in WebSocket sockets.', type: 'gauge', samples: [{ value: ws.bufferedBytes }] },
      {
        name: 'arbex_jobs',
        help: 'Labelling jobs by state.',
        type: 'gauge',
        samples: Object.entries(jobCounts).map(([state, value]) => ({ labels: { state }, value })),
      },
      { name: 'arbex_upload_bytes_total', help: 'Bytes of video received by upload.', type: 'counter', samples: [{ value: uploadedBytes }] },
      {
        name: 'arbex_http_requests_total',
        help: 'HTTP responses by status code.',
        type: 'counter',
        samples: [...requests].map(([code, value]) => ({ labels: { code }, value })),
      },
    ];
    for (const [key, value] of Object.entries(engine.metrics())) {
      const name = metricName(`arbex_engine_${key}`);
      metrics.push({ name, help: `Engine metric ${key}.`, type: name.endsWith('_total') ? 'counter' : 'gauge', samples: [{ value }] });
    }
    return c.body(renderMetrics(metrics), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
  });

  return app;
}
