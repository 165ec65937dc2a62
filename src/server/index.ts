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
import { ROOT, type Settings } from '../env.js';
import type { Engine } from '../pipeline/types.js';
import { createApp } from './app.js';
import { createHub, type Hub, type HubOptions } from './hub.js';
import { createJobs, type Jobs } from './jobs.js';

export interface ServerOptions {
  engine: Engine;
  /** port, host, token and mediaDirs are taken from here. */
  settings: Pick<Settings, 'port' | 'host' | 'token' | 'mediaDirs'>;
  /** Largest video upload in bytes. */
  maxUploadBytes?: number;
  /** Temporary folder for uploads and job outputs; created (and removed on close) when unset. */
  dataDir?: string;
  /** The dashboard's static files. */
  webDir?: string;
  /** WebSocket tuning: heartbeat and per-client queue bounds. */
  ws?: Omit<HubOptions, 'engine' | 'token'>;
}

export interface ArbexServer {
  /** Binds settings.host:settings.port (0 = any free port) and resolves with the URL. */
  listen(): Promise<{ url: string; port: number }>;
  readonly http: Server;
  readonly hub: Hub;
  readonly jobs: Jobs;
  /** Cancels jobs, disconnects clients, closes the port and removes temporary files. Leaves the engine running. */
  close(): Promise<void>;
}

const DEFAULTS = { maxUploadBytes: 512 * 1024 * 1024, webDir: path.join(ROOT, 'web') };

export function createServer(options: ServerOptions): ArbexServer {
  const { engine, settings, maxUploadBytes, webDir, dataDir, ws } = { ...DEFAULTS, ...options };
  const dir = dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'arbex-server-'));
  const hub = createHub({ ...ws, engine, token: settings.token });
  const jobs = createJobs({ engine, dir: path.join(dir, 'jobs') });
  const app = createApp({ engine, hub, jobs, token: settings.token, mediaDirs: settings.mediaDirs, uploadDir: dir, maxUploadBytes, webDir });
  const http = createAdaptorServer({ fetch: app.fetch, hostname: settings.host }) as Server;
  http.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head));

  return {
    http,
    hub,
    jobs,
    listen: () =>
      new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(settings.port, settings.host, () => {
          http.off('error', reject);
          const { port } = http.address() as AddressInfo;
          const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
          resolve({ url: `http://${host}:${port}`, port });
        });
      }),
    async close() {
      await jobs.close();
      await hub.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      if (!dataDir) await rm(dir, { recursive: true, force: true });
    },
  };
}
