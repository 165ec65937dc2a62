/** Starts a server around the fake engine on a free loopback port. */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createServer, type ServerOptions } from '../../src/server/index.js';
import { createFakeEngine, probeFake, type FakeEngineOptions } from './fake-engine.js';

export async function startTestServer(options: { token?: string; fake?: FakeEngineOptions } & Partial<Omit<ServerOptions, 'engine' | 'settings'>> = {}) {
  const { token, fake, ...rest } = options;
  const mediaDir = mkdtempSync(path.join(os.tmpdir(), 'arbex-media-'));
  const engine = createFakeEngine(fake);
  const server = createServer({ engine, settings: { port: 0, host: '127.0.0.1', token, mediaDirs: [mediaDir] }, probe: probeFake, ...rest });
  const { url } = await server.listen();
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return {
    url,
    wsUrl: `${url.replace('http', 'ws')}/ws`,
    server,
    engine,
    mediaDir,
    /** fetch with the token (if any) and a JSON body when `json` is given. */
    api(p: string, init: RequestInit & { json?: unknown } = {}) {
      const { json, headers, ...restInit } = init;
      return fetch(url + p, {
        ...restInit,
        headers: { ...auth, ...(json !== undefined ? { 'content-type': 'application/json' } : {}), ...(headers as Record<string, string>) },
        body: json !== undefined ? JSON.stringify(json) : restInit.body,
      });
    },
    async close() {
      await server.close();
      await engine.close();
      await rm(mediaDir, { recursive: true, force: true });
    },
  };
}

export { sleep, waitFor } from '../support/async.js';
