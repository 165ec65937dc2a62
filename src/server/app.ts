/** The HTTP routes (hono). Everything stateful is passed in, so tests build an app around fakes. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { zValidator } from '@hono/zod-validator';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Limits } from '../env.js';
import type { FfmpegChoice } from '../ingest/ffmpeg.js';
import type { VideoProbe } from '../ingest/probe.js';
import { redact } from '../ingest/index.js';
import type { Engine, StreamHandle, StreamInfo } from '../pipeline/types.js';
import { presentedToken, type AuthGate } from './auth.js';
import { HttpError, badRequest, notFound, type ErrorStatus } from './errors.js';
import type { Hub } from './hub.js';
import { jobRoutes } from './job-routes.js';
import type { Jobs } from './jobs.js';
import { assertStreamRoom, jsonBodyLimit } from './limits.js';
import { openApiDocument } from './openapi.js';
import { metricName, renderMetrics, type Metric } from './prometheus.js';
import type { Security } from './security.js';
import { CreateStreamBody, describeIssues } from './schemas.js';

export interface AppDeps {
  engine: Engine;
  hub: Hub;
  jobs: Jobs;
  token?: string;
  /** The token check, shared with the WebSocket: 401, then 429 for a client that keeps guessing. */
  auth: AuthGate;
  /** Host and Origin checks and the security headers (security.ts). */
  security: Pick<Security, 'middleware'>;
  /** Folders a job's `{path}` must lie in. */
  mediaDirs: string[];
  /** Where uploads are written while they arrive. */
  uploadDir: string;
  limits: Limits;
  /** The ffmpeg that runs, for /api/info. */
  ffmpeg: Pick<FfmpegChoice, 'path' | 'version'>;
  /** Reads a video's header before a job is queued (ingest's probeVideo). */
  probe(file: string, name: string): Promise<VideoProbe>;
  /** The dashboard's static files. */
  webDir: string;
}

const STATIC_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

function errorBody(error: string, detail?: string) {
  // Details may quote a source URL, with its credentials.
  return detail === undefined ? { error } : { error, detail: redact(detail) };
}

/** A stream as clients see it: credentials in its source, name or error redacted. */
function publicInfo(info: StreamInfo): StreamInfo {
  return { ...info, source: redact(info.source), name: redact(info.name), ...(info.lastError ? { lastError: redact(info.lastError) } : {}) };
}

/**
 * @example
 * const app = createApp({ engine, hub, jobs, mediaDirs, uploadDir, limits, ffmpeg, probe, webDir });
 */
export function createApp(deps: AppDeps): Hono {
  const { engine, hub, jobs, token, auth, security, mediaDirs, uploadDir, limits, ffmpeg, probe, webDir } = deps;
  const { maxUploadBytes } = limits;
  const app = new Hono();
  const startedMs = Date.now();
  const requests = new Map<string, number>();
  let uploadedBytes = 0;

  const stream = (id: string): StreamHandle => {
    const h = engine.streams().find((s) => s.id === id && s.info().state !== 'stopped');
    if (!h) throw notFound('stream', id);
    return h;
  };

  app.use('*', async (c, next) => {
    await next();
    const key = String(c.res.status);
    requests.set(key, (requests.get(key) ?? 0) + 1);
  });
  app.use('*', security.middleware);

  app.onError((err, c) => {
    if (err instanceof HttpError) return c.json(errorBody(err.error, err.detail), err.status);
    if (err instanceof HTTPException) {
      const status = err.status as ErrorStatus;
      return c.json(errorBody(status === 401 ? 'unauthorized' : 'bad request', err.message), status);
    }
    return c.json(errorBody('internal error', (err as Error)?.message), 500);
  });
  app.notFound((c) => c.json(errorBody('not found', c.req.path), 404));

  app.get('/api/health', (c) => c.json({ status: 'ok' as const, uptimeSeconds: Math.round((Date.now() - startedMs) / 1000) }));

  // Everything else under /api, and /metrics, needs the token when one is set.
  const requireToken = async (c: Context, next: () => Promise<void>) => {
    // The header only: a token in a URL ends up in histories, proxies and logs.
    const result = auth.check(getConnInfo(c).remote.address, presentedToken(c.req.header('authorization')));
    if (!result.ok && result.status === 429) {
      return c.json(errorBody('too many requests', 'too many failed token attempts from this address'), 429, { 'retry-after': String(result.retryAfterSeconds) });
    }
    if (!result.ok) throw new HttpError(401, 'unauthorized', 'missing or bad bearer token');
    await next();
  };
  app.use('/api/*', requireToken);
  app.use('/metrics', requireToken);
  app.use('/api/*', jsonBodyLimit());

  app.get('/api/info', (c) =>
    c.json({ name: 'arbex' as const, classes: [...engine.classes], auth: token !== undefined, maxUploadBytes, mediaDirs, limits, ffmpeg: { path: ffmpeg.path, version: ffmpeg.version } }),
  );

  app.get('/api/openapi.json', (c) => c.json(openApiDocument()));

  app.post(
    '/api/streams',
    zValidator('json', CreateStreamBody, (result) => {
      if (!result.success) throw badRequest(describeIssues(result.error));
    }),
    (c) => {
      const body = c.req.valid('json');
      assertStreamRoom(engine, limits.maxStreams);
      let handle: StreamHandle;
      try {
        handle = engine.openStream(body.source, { name: body.name, fps: body.fps, smoothing: body.smoothing, loop: body.loop });
      } catch (e) {
        // The engine throws synchronously only to refuse a source (bad URL, file outside media, ...).
        throw new HttpError(422, 'refused source', (e as Error)?.message ?? String(e));
      }
      hub.attach(handle);
      return c.json({ id: handle.id }, 201);
    },
  );

  app.get('/api/streams', (c) => {
    hub.sync();
    return c.json(engine.streams().map((h) => publicInfo(h.info())).filter((i) => i.state !== 'stopped'));
  });

  app.get('/api/streams/:id', (c) => c.json(publicInfo(stream(c.req.param('id')).info())));

  app.get('/api/streams/:id/frame.jpg', async (c) => {
    const jpeg = await stream(c.req.param('id')).latestJpeg();
    if (!jpeg) throw new HttpError(404, 'no frame yet', c.req.param('id'));
    return c.body(new Uint8Array(jpeg), 200, { 'content-type': 'image/jpeg', 'cache-control': 'no-store' });
  });

  app.delete('/api/streams/:id', async (c) => {
    await stream(c.req.param('id')).stop();
    return c.body(null, 204);
  });

  app.route('/', jobRoutes({ jobs, mediaDirs, uploadDir, limits, probe, onUpload: (bytes) => (uploadedBytes += bytes) }));

  app.get('/metrics', (c) => {
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
      { name: 'arbex_uptime_seconds', help: 'Seconds since the server started.', type: 'gauge', samples: [{ value: (Date.now() - startedMs) / 1000 }] },
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

  // The dashboard is public even with a token: the page itself asks for the token.
  const serveStatic = async (c: Context, requested: string) => {
    const type = STATIC_TYPES[path.extname(requested)]!;
    const body = await readFile(path.join(webDir, requested)).catch(() => {
      throw notFound('file', requested);
    });
    return c.body(new Uint8Array(body), 200, { 'content-type': type, 'cache-control': 'no-cache' });
  };
  app.get('/', (c) => serveStatic(c, 'index.html'));
  app.get('/:file{[\\w-]+\\.(html|js|css|svg)}', (c) => serveStatic(c, c.req.param('file')));

  return app;
}
