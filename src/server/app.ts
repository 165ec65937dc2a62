/**
 * The HTTP routes (hono): the cross-cutting middleware here, the routes in sub-apps mounted with
 * `app.route` (streams, jobs, metrics, the dashboard). Everything stateful is passed in, so tests
 * build an app around fakes.
 */
import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Limits } from '../env.js';
import type { FfmpegChoice } from '../ingest/ffmpeg.js';
import type { VideoProbe } from '../ingest/probe.js';
import { redact } from '../ingest/index.js';
import type { Engine } from '../pipeline/types.js';
import { presentedToken, type AuthGate } from './auth.js';
import { HttpError, type ErrorStatus } from './errors.js';
import type { Hub } from './hub.js';
import { jobRoutes } from './job-routes.js';
import type { Jobs } from './jobs.js';
import { jsonBodyLimit } from './limits.js';
import { metricsRoutes, type Traffic } from './metrics-routes.js';
import { openApiDocument } from './openapi.js';
import type { Security } from './security.js';
import { staticRoutes } from './static-routes.js';
import { streamRoutes } from './stream-routes.js';

export interface AppDeps {
  engine: Engine;
  hub: Pick<Hub, 'stats'>;
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

function errorBody(error: string, detail?: string) {
  // Details may quote a source URL, with its credentials.
  return detail === undefined ? { error } : { error, detail: redact(detail) };
}

/** Every error as `{error, detail}` with its status; credentials redacted. */
function answerError(err: Error, c: Context) {
  if (err instanceof HttpError) return c.json(errorBody(err.error, err.detail), err.status);
  if (err instanceof HTTPException) {
    const status = err.status as ErrorStatus;
    return c.json(errorBody(status === 401 ? 'unauthorized' : 'bad request', err.message), status);
  }
  return c.json(errorBody('internal error', err?.message), 500);
}

/** The bearer token, when one is set: 401, then 429 for an address that keeps guessing. */
const requireToken = (auth: AuthGate) => async (c: Context, next: () => Promise<void>) => {
  // The header only: a token in a URL ends up in histories, proxies and logs.
  const result = auth.check(getConnInfo(c).remote.address, presentedToken(c.req.header('authorization')));
  if (!result.ok && result.status === 429) {
    return c.json(errorBody('too many requests', 'too many failed token attempts from this address'), 429, { 'retry-after': String(result.retryAfterSeconds) });
  }
  if (!result.ok) throw new HttpError(401, 'unauthorized', 'missing or bad bearer token');
  await next();
};

/**
 * @example
 * const app = createApp({ engine, hub, jobs, auth, security, mediaDirs, uploadDir, limits, ffmpeg, probe, webDir });
 */
export function createApp(deps: AppDeps): Hono {
  const { engine, hub, jobs, token, auth, security, mediaDirs, uploadDir, limits, ffmpeg, probe, webDir } = deps;
  const app = new Hono();
  const traffic: Traffic = { startedMs: Date.now(), requests: new Map(), uploadedBytes: 0 };

  app.use('*', async (c, next) => {
    await next();
    const key = String(c.res.status);
    traffic.requests.set(key, (traffic.requests.get(key) ?? 0) + 1);
  });
  app.use('*', security.middleware);
  app.onError(answerError);
  app.notFound((c) => c.json(errorBody('not found', c.req.path), 404));

  app.get('/api/health', (c) => c.json({ status: 'ok' as const, uptimeSeconds: Math.round((Date.now() - traffic.startedMs) / 1000) }));

  // Everything else under /api, and /metrics, needs the token when one is set.
  app.use('/api/*', requireToken(auth));
  app.use('/metrics', requireToken(auth));
  app.use('/api/*', jsonBodyLimit());

  app.get('/api/info', (c) =>
    c.json({ name: 'arbex' as const, classes: [...engine.classes], auth: token !== undefined, maxUploadBytes: limits.maxUploadBytes, mediaDirs, limits, ffmpeg: { path: ffmpeg.path, version: ffmpeg.version } }),
  );
  app.get('/api/openapi.json', (c) => c.json(openApiDocument()));

  app.route('/api/streams', streamRoutes({ engine, maxStreams: limits.maxStreams }));
  app.route('/', jobRoutes({ jobs, mediaDirs, uploadDir, limits, probe, onUpload: (bytes) => (traffic.uploadedBytes += bytes) }));
  app.route('/', metricsRoutes({ engine, hub, jobs, traffic }));
  app.route('/', staticRoutes(webDir));
  return app;
}
