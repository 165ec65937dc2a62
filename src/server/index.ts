/**
 * The arbex server: HTTP API, the dashboard and the WebSocket on one port.
 *
 * @example
 * const server = createServer({ engine, settings: readSettings() });
 * const { url } = await server.listen();
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import type { Hono } from 'hono';
import { DEFAULT_LIMITS, ROOT, type Limits, type Settings } from '../env.js';
import { chooseFfmpeg, type FfmpegChoice } from '../ingest/ffmpeg.js';
import { probeVideo, type VideoProbe } from '../ingest/probe.js';
import type { Engine } from '../pipeline/types.js';
import { createApp } from './app.js';
import { createAuthGate } from './auth.js';
import { createHub, type Hub, type HubOptions } from './hub.js';
import { inProcessRunner, type JobRunner } from './job-runner.js';
import { createJobs, type Jobs } from './jobs.js';
import { openMediaFile } from './media.js';
import { answerClientError, checkExposure, createSecurity } from './security.js';

export interface ServerOptions {
  engine: Engine;
  /** port, host, token, mediaDirs and ffmpegPath are taken from here. */
  settings: Pick<Settings, 'port' | 'host' | 'token' | 'mediaDirs'> & Partial<Pick<Settings, 'allowedHosts' | 'allowedOrigins' | 'insecureNoToken'>> & Partial<Pick<Settings, 'ffmpegPath'>>;
  /** Caps on streams, uploads and jobs (DEFAULT_LIMITS for the rest). */
  limits?: Partial<Limits>;
  /** Jobs, their inputs and outputs, kept across restarts (settings.dataDir); unset: a temporary folder, removed on close. */
  dataDir?: string;
  /** Runs labelling jobs; default: in this process, through `engine` (`arbex serve` runs them in job processes). */
  jobRunner?: JobRunner;
  /** The jobs, when they live elsewhere (a cluster gateway's, in JetStream); default: stored in dataDir and run by jobRunner. */
  jobs?: Jobs;
  /** Wraps the app before it is served (a cluster gateway adds the cluster to /api/health and /metrics). */
  extend?: (app: Hono) => Hono;
  /** The ffmpeg that runs; default: chooseFfmpeg with settings.ffmpegPath as the override. */
  ffmpeg?: FfmpegChoice;
  /** Reads a video's header before its job is queued; default: probeVideo with that ffmpeg. */
  probe?: (file: string, name: string) => Promise<VideoProbe>;
  /** The dashboard's static files. */
  webDir?: string;
  /** WebSocket tuning: heartbeat and per-client queue bounds. */
  ws?: Omit<HubOptions, 'engine' | 'jobs' | 'token'>;
}

export interface ArbexServer {
  /** Restores the stored jobs, reclaims stale uploads, then binds settings.host:settings.port (0 = any free port). */
  listen(): Promise<{ url: string; port: number }>;
  readonly http: Server;
  readonly hub: Hub;
  readonly jobs: Jobs;
  /** Stops running jobs (queued again for the next start), disconnects clients and closes the port. Leaves the engine running. */
  close(): Promise<void>;
}

const DEFAULTS = { webDir: path.join(ROOT, 'web') };

export function createServer(options: ServerOptions): ArbexServer {
  const { engine, settings, webDir, dataDir, ws } = { ...DEFAULTS, ...options };
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const ffmpeg = options.ffmpeg ?? chooseFfmpeg({ override: settings.ffmpegPath });
  const probe = options.probe ?? ((file: string, name: string) => probeVideo(file, { ffmpegPath: ffmpeg.path, name }));
  const dir = dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'arbex-server-'));
  const uploadDir = path.join(dir, 'uploads');
  // Throws for a non-loopback address without a token (unless settings.insecureNoToken).
  checkExposure(settings);
  const auth = createAuthGate({ token: settings.token });
  const security = createSecurity({
    port: () => (http.address() as AddressInfo | null)?.port ?? settings.port,
    allowedHosts: settings.allowedHosts,
    allowedOrigins: settings.allowedOrigins,
  });
  const jobs = options.jobs ?? createJobs({
    runner: options.jobRunner ?? inProcessRunner(engine),
    dir: path.join(dir, 'jobs'),
    openMedia: (file) => openMediaFile(file, settings.mediaDirs),
    limits,
  });
  const hub = createHub({ ...ws, engine, jobs, token: settings.token, auth, vetUpgrade: security.upgradeRefusal });
  const app = createApp({ engine, hub, jobs, token: settings.token, auth, security, mediaDirs: settings.mediaDirs, uploadDir, limits, ffmpeg, probe, webDir });
  const served = options.extend ? options.extend(app) : app;
  const http = createAdaptorServer({ fetch: served.fetch, hostname: settings.host }) as Server;
  http.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head));
  http.on('clientError', answerClientError);

  return {
    http,
    hub,
    jobs,
    async listen() {
      // Nothing writes uploads before the port is bound: whatever is there was left by a crash.
      await rm(uploadDir, { recursive: true, force: true });
      await jobs.restore();
      return new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(settings.port, settings.host, () => {
          http.off('error', reject);
          const { port } = http.address() as AddressInfo;
          const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
          resolve({ url: `http://${host}:${port}`, port });
        });
      });
    },
    async close() {
      await jobs.close();
      await hub.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      if (!dataDir) await rm(dir, { recursive: true, force: true });
    },
  };
}
