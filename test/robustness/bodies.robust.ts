/**
 * 1,200 generated malformed bodies (JSON and multipart) and a few lying requests on raw sockets,
 * against a running `arbex serve`: every answer is a 4xx, the process stays up, nothing is queued,
 * no upload is left behind and its memory stays bounded.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { generateBodies, type Probe } from './bodies.js';
import { startServe, type Serve } from './serve.js';

const SEED = Number(process.env.ARBEX_FUZZ_SEED ?? 20261202);
const CONCURRENCY = 8;

/** Sends raw bytes and resolves with the status line's code, or 0 when the server just closed. */
function raw(url: string, request: string, endAfterMs = 500): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(request));
    let answer = '';
    socket.on('data', (d) => (answer += d));
    socket.on('error', () => {});
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)));
    setTimeout(() => socket.destroy(), endAfterMs);
  });
}

describe('malformed HTTP bodies against arbex serve', () => {
  let serve: Serve;
  let dataDir: string;
  let mediaDir: string;
  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'arbex-fuzz-data-'));
    mediaDir = mkdtempSync(path.join(os.tmpdir(), 'arbex-fuzz-media-'));
    serve = await startServe({ dataDir, mediaDir, args: ['--max-upload', '8'] });
  });
  after(async () => {
    serve.child.kill('SIGKILL');
    await serve.exited;
    await rm(dataDir, { recursive: true, force: true });
    await rm(mediaDir, { recursive: true, force: true });
  });

  it('answers every one with a 4xx and stays up, with bounded memory', async () => {
    const probes = generateBodies({ json: 600, multipart: 600 }, SEED);
    const rssBefore = serve.rss();
    let rssPeak = rssBefore;
    const byKind = new Map<string, Map<number, number>>();
    const wrong: string[] = [];
    const send = async (p: Probe) => {
      let status = 0;
      let answer = '';
      try {
        const res = await fetch(serve.url + p.path, { method: 'POST', headers: p.contentType ? { 'content-type': p.contentType } : {}, body: p.body });
        status = res.status;
        answer = await res.text();
      } catch (e) {
        answer = (e as Error).message;
      }
      const counts = byKind.get(p.kind) ?? new Map<number, number>();
      counts.set(status, (counts.get(status) ?? 0) + 1);
      byKind.set(p.kind, counts);
      if (status < 400 || status >= 500) wrong.push(`${p.kind} -> ${status} ${answer.slice(0, 200)}`);
      rssPeak = Math.max(rssPeak, serve.rss());
    };
    for (let i = 0; i < probes.length; i += CONCURRENCY) await Promise.all(probes.slice(i, i + CONCURRENCY).map(send));

    const summary = [...byKind].sort().map(([kind, counts]) => `${kind}: ${[...counts].map(([s, n]) => `${s}x${n}`).join(' ')}`);
    console.log(`# ${probes.length} bodies (seed ${SEED}); RSS ${(rssBefore / 2 ** 20).toFixed(0)} MiB before, peak ${(rssPeak / 2 ** 20).toFixed(0)} MiB\n# ${summary.join('\n# ')}`);
    assert.deepEqual(wrong, [], 'answers outside 4xx');
    assert.equal(serve.child.exitCode, null, 'the server is still running');
    assert.equal((await fetch(`${serve.url}/api/health`)).status, 200);
    assert.deepEqual(await (await fetch(`${serve.url}/api/jobs`)).json(), [], 'nothing was queued');
    const uploads = path.join(dataDir, 'uploads');
    assert.deepEqual(existsSync(uploads) ? readdirSync(uploads) : [], [], 'no upload left behind');
    assert.ok(rssPeak - rssBefore < 256 * 2 ** 20, `RSS grew by ${((rssPeak - rssBefore) / 2 ** 20).toFixed(0)} MiB`);
  });

  it('survives requests that lie about their length or end half-way', async () => {
    const host = new URL(serve.url).host;
    const head = (length: string, type = 'application/json') => `POST /api/jobs HTTP/1.1\r\nHost: ${host}\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\n\r\n`;
    // Declared far over the limits: refused from the header, before any body.
    assert.equal(await raw(serve.url, head('10000000000', 'multipart/form-data; boundary=x')), 413);
    assert.equal(await raw(serve.url, head('1000000')), 413);
    // Declared, then not sent: the client goes away (no answer to expect), the server stays.
    for (const type of ['application/json', 'multipart/form-data; boundary=x']) {
      await raw(serve.url, `${head('5000', type)}{"path":`, 200);
      await raw(serve.url, `${head('5000', type)}--x\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc`, 200);
    }
    // Chunked, broken in the middle of a chunk.
    await raw(serve.url, `POST /api/jobs HTTP/1.1\r\nHost: ${host}\r\nContent-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\nffff\r\n--x\r\n`, 200);
    assert.equal(serve.child.exitCode, null);
    assert.equal((await fetch(`${serve.url}/api/health`)).status, 200);
    assert.deepEqual(await (await fetch(`${serve.url}/api/jobs`)).json(), []);
  });
});
