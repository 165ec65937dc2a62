/**
 * Issue 11, items 3 and 6: Host and Origin checks (DNS rebinding, other sites), the token only in
 * a header except on the WebSocket, slowed-down guessing, security headers, and no open server on
 * a non-loopback address.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../../src/env.js';
import { createAuthGate } from '../../src/server/auth.js';
import { createServer } from '../../src/server/index.js';
import { checkExposure } from '../../src/server/security.js';
import { createFakeEngine, probeFake } from './fake-engine.js';
import { upgradeStatus } from '../support/ws.js';
import { startTestServer } from './helpers.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request with any Host and Origin (fetch would not let a test set Host). */
function request(url: string, options: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer | string; localAddress?: string } = {}): Promise<Answer> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path ?? '/', headers: options.headers, localAddress: options.localAddress, setHost: !(options.headers && 'host' in options.headers) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The status of a WebSocket upgrade of the server at `url`: 101 when it opens. */
const upgrade = (url: string, headers: Record<string, string>, query = '', localAddress?: string): Promise<number> =>
  upgradeStatus(`${url.replace('http', 'ws')}/ws${query}`, headers, localAddress);

/** A multipart upload body, as a browser form would send it. */
async function multipart(): Promise<{ body: Buffer; type: string }> {
  const form = new FormData();
  form.append('file', new Blob(['FAKEVIDEO 5']), 'clip.mp4');
  const req = new Request('http://x/', { method: 'POST', body: form });
  return { body: Buffer.from(await req.arrayBuffer()), type: req.headers.get('content-type')! };
}

describe('Host and Origin', () => {
  let t: Server;
  let host: string;
  before(async () => {
    t = await startTestServer({ fake: { intervalMs: 50 } });
    host = new URL(t.url).host;
  });
  after(() => t.close());

  it('answers only Host names the server is reached by: a rebound domain gets 421', async () => {
    const port = new URL(t.url).port;
    for (const p of ['/api/health', '/', '/api/streams', '/app.js']) {
      for (const h of ['evil.example', `evil.example:${port}`, `localhost.evil.example:${port}`, `127.0.0.1:1`, '']) {
        const res = await request(t.url, { path: p, headers: { host: h } });
        assert.equal(res.status, 421, `${p} Host "${h}"`);
        assert.equal(JSON.parse(res.body).error, 'misdirected request');
      }
      for (const h of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
        assert.equal((await request(t.url, { path: p, headers: { host: h } })).status, 200, `${p} Host "${h}"`);
      }
    }
  });

  it('refuses state-changing requests from another origin, a form upload included', async () => {
    const evil = { origin: 'http://evil.example' };
    const json = { 'content-type': 'application/json' };
    const add = JSON.stringify({ source: 'rtsp://cam/1' });
    const opened = t.engine.opened.length;
    for (const origin of ['http://evil.example', 'null', `https://${host}.evil.example`, `http://127.0.0.1:1`]) {
      const res = await request(t.url, { method: 'POST', path: '/api/streams', headers: { ...json, origin }, body: add });
      assert.equal(res.status, 403, origin);
      assert.equal(JSON.parse(res.body).error, 'forbidden origin');
    }
    assert.equal(t.engine.opened.length, opened, 'no stream was opened');

    // A multipart form post needs no CORS preflight: only the Origin check stops it.
    const upload = await multipart();
    const refused = await request(t.url, { method: 'POST', path: '/api/jobs', headers: { ...evil, 'content-type': upload.type }, body: upload.body });
    assert.equal(refused.status, 403);
    assert.deepEqual(await (await t.api('/api/jobs')).json(), [], 'no job was created');

    const own = await request(t.url, { method: 'POST', path: '/api/streams', headers: { ...json, origin: t.url }, body: add });
    assert.equal(own.status, 201, 'the dashboard on the server itself');
    const { id } = JSON.parse(own.body) as { id: string };
    assert.equal((await request(t.url, { method: 'DELETE', path: `/api/streams/${id}`, headers: evil })).status, 403);
    assert.equal((await t.api(`/api/streams/${id}`)).status, 200, 'still there');
    assert.equal((await request(t.url, { method: 'POST', path: '/api/streams', headers: json, body: add })).status, 201, 'no Origin: not a browser');
    const read = await request(t.url, { path: '/api/streams', headers: evil });
    assert.equal(read.status, 200);
    assert.equal(read.headers['access-control-allow-origin'], undefined, 'no CORS: the browser keeps the answer from the page');
  });

  it('refuses WebSocket upgrades from another Host or Origin', async () => {
    const port = new URL(t.url).port;
    assert.equal(await upgrade(t.url, { host: `evil.example:${port}` }), 421);
    assert.equal(await upgrade(t.url, { origin: 'http://evil.example' }), 403);
    assert.equal(await upgrade(t.url, { origin: 'null' }), 403);
    assert.equal(await upgrade(t.url, { origin: t.url }), 101);
    assert.equal(await upgrade(t.url, {}), 101);
  });

  it('configured hosts and origins are accepted', async () => {
    const mediaDir = mkdtempSync(path.join(os.tmpdir(), 'arbex-media-'));
    const engine = createFakeEngine({ intervalMs: 50 });
    const server = createServer({
      engine,
      probe: probeFake,
      settings: { port: 0, host: '127.0.0.1', mediaDirs: [mediaDir], allowedHosts: ['arbex.example.com'], allowedOrigins: ['https://dashboard.example.com'] },
    });
    const { url } = await server.listen();
    try {
      for (const h of ['arbex.example.com', `arbex.example.com:${new URL(url).port}`]) assert.equal((await request(url, { path: '/api/health', headers: { host: h } })).status, 200, h);
      assert.equal((await request(url, { path: '/api/health', headers: { host: 'other.example.com' } })).status, 421);
      const res = await request(url, { method: 'POST', path: '/api/streams', headers: { 'content-type': 'application/json', origin: 'https://dashboard.example.com' }, body: JSON.stringify({ source: 'rtsp://cam/1' }) });
      assert.equal(res.status, 201);
      assert.equal(await upgrade(url, { origin: 'https://dashboard.example.com' }), 101);
      assert.equal(await upgrade(url, { origin: 'https://other.example.com' }), 403);
      assert.throws(() => createServer({ engine, settings: { port: 0, host: '127.0.0.1', mediaDirs: [], allowedOrigins: ['not an origin'] } }), /ARBEX_ALLOWED_ORIGINS/);
    } finally {
      await server.close();
      await engine.close();
      await rm(mediaDir, { recursive: true, force: true });
    }
  });
});

describe('tokens', () => {
  const token = 'tok-3f9a1c';
  let t: Server;
  before(async () => {
    t = await startTestServer({ token, fake: { intervalMs: 50 } });
  });
  after(() => t.close());

  it('?token= is accepted on the WebSocket only, and never written to the logs', async () => {
    const written: string[] = [];
    const originals = { log: console.log, error: console.error, warn: console.warn, info: console.info };
    const stdout = process.stdout.write.bind(process.stdout);
    const stderr = process.stderr.write.bind(process.stderr);
    const capture = (...args: unknown[]) => void written.push(args.map(String).join(' '));
    Object.assign(console, { log: capture, error: capture, warn: capture, info: capture });
    process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => (written.push(String(chunk)), stdout(chunk as string, ...(rest as [])))) as typeof process.stdout.write;
    process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => (written.push(String(chunk)), stderr(chunk as string, ...(rest as [])))) as typeof process.stderr.write;
    try {
      const http401 = await fetch(`${t.url}/api/streams?token=${token}`);
      assert.equal(http401.status, 401);
      assert.ok(!(await http401.text()).includes(token));
      assert.equal((await fetch(`${t.url}/nowhere?token=${token}`)).status, 404);
      assert.equal(await upgrade(t.url, {}, `?token=${token}`), 101);
      assert.equal(await upgrade(t.url, { authorization: `Bearer ${token}` }), 101);
      assert.equal(await upgrade(t.url, {}, `?token=${token}x`), 401);
    } finally {
      Object.assign(console, originals);
      process.stdout.write = stdout;
      process.stderr.write = stderr;
    }
    assert.ok(!written.join('\n').includes(token), 'the token appears in no log line');
  });

  it('a client that keeps guessing gets 429, on HTTP and WebSocket alike; other clients do not', async () => {
    // The guesser connects from 127.0.0.3 (the whole of 127/8 is this host), the others from 127.0.0.1.
    const guesser = '127.0.0.3';
    const wrong = { authorization: 'Bearer guess' };
    for (let i = 0; i < 10; i++) assert.equal((await request(t.url, { path: '/api/info', headers: wrong, localAddress: guesser })).status, 401, `attempt ${i + 1}`);
    const limited = await request(t.url, { path: '/api/info', headers: wrong, localAddress: guesser });
    assert.equal(limited.status, 429);
    assert.equal(JSON.parse(limited.body).error, 'too many requests');
    assert.ok(Number(limited.headers['retry-after']) > 0 && Number(limited.headers['retry-after']) <= 60);
    // Even the right token waits for the window to end: guessing costs a minute per 10 tries.
    assert.equal((await request(t.url, { path: '/api/info', headers: { authorization: `Bearer ${token}` }, localAddress: guesser })).status, 429);
    assert.equal(await upgrade(t.url, {}, `?token=${token}`, guesser), 429);
    assert.equal((await request(t.url, { path: '/api/info', headers: { authorization: `Bearer ${token}` } })).status, 200, 'another client');
    assert.equal((await request(t.url, { path: '/api/health', localAddress: guesser })).status, 200, 'health needs no token');
  });

  it('the failure count: per client, per window, IPv6 by /64, reset by success', async () => {
    const gate = createAuthGate({ token: 't', maxFailures: 2, windowMs: 100 });
    assert.deepEqual(gate.check('10.0.0.1', 'x'), { ok: false, status: 401 });
    assert.deepEqual(gate.check('10.0.0.1', 'x'), { ok: false, status: 401 });
    assert.equal(gate.check('10.0.0.1', 't').ok, false);
    assert.equal(gate.check('::ffff:10.0.0.1', 't').ok, false, 'the same client over IPv6-mapped IPv4');
    assert.equal(gate.check('10.0.0.2', 't').ok, true);
    gate.check('2001:db8:1:2::1', 'x');
    gate.check('2001:db8:1:2:ffff::9', 'x');
    assert.deepEqual(gate.check('2001:db8:1:2:0:0:0:5', 't'), { ok: false, status: 429, retryAfterSeconds: 1 }, 'one /64 is one client');
    assert.equal(gate.check('2001:db8:1:3::1', 't').ok, true);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(gate.check('10.0.0.1', 't').ok, true, 'a new window');
    gate.check('10.0.0.3', 'x');
    assert.equal(gate.check('10.0.0.3', 't').ok, true);
    gate.check('10.0.0.3', 'x');
    assert.deepEqual(gate.check('10.0.0.3', 'x'), { ok: false, status: 401 }, 'a success started the count again');
    assert.deepEqual(createAuthGate({}).check('10.0.0.1', undefined), { ok: true });
  });
});

describe('exposure and headers', () => {
  it('refuses to listen on a non-loopback address without a token unless told so', async () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.5', 'cam-server.lan']) {
      assert.throws(() => checkExposure({ host }), /refusing to listen on .* without a token.*--insecure-no-token/, host);
      assert.doesNotThrow(() => checkExposure({ host, token: 't' }));
      assert.doesNotThrow(() => checkExposure({ host, insecureNoToken: true }));
    }
    for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1', '[::1]']) assert.doesNotThrow(() => checkExposure({ host }), host);
    const engine = createFakeEngine();
    assert.throws(() => createServer({ engine, settings: { port: 0, host: '0.0.0.0', mediaDirs: [] } }), /refusing to listen on 0\.0\.0\.0/);
    await engine.close();

    // The command says so before loading anything.
    const env = { ...process.env, ARBEX_TOKEN: '', ARBEX_INSECURE_NO_TOKEN: '' };
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'arbex.js'), 'serve', '--host', '0.0.0.0', '--port', '0', '--no-demo'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.notEqual(code, 0);
    assert.match(out, /refusing to listen on 0\.0\.0\.0 without a token/);
    assert.doesNotMatch(out, /serving on/);
  });

  it('every answer carries the security headers; the dashboard needs no inline script or style', async () => {
    const t = await startTestServer({ token: 'x' });
    try {
      for (const p of ['/', '/app.js', '/style.css', '/api/health', '/api/streams', '/nothing']) {
        const res = await request(t.url, { path: p });
        const csp = String(res.headers['content-security-policy']);
        assert.match(csp, /(^|; )default-src 'self'(;|$)/, p);
        assert.match(csp, /frame-ancestors 'none'/, p);
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, p);
        assert.equal(res.headers['x-content-type-options'], 'nosniff', p);
        assert.equal(res.headers['x-frame-options'], 'DENY', p);
        assert.equal(res.headers['referrer-policy'], 'no-referrer', p);
      }
      const refused = await request(t.url, { path: '/', headers: { host: 'evil.example' } });
      assert.equal(refused.headers['x-frame-options'], 'DENY', 'refusals too');
    } finally {
      await t.close();
    }
    const html = readFileSync(path.join(ROOT, 'web', 'index.html'), 'utf8');
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline script');
    assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=/i, 'no inline style or handler');
    assert.doesNotMatch(readFileSync(path.join(ROOT, 'web', 'app.js'), 'utf8'), /setAttribute\(\s*['"]style|innerHTML|\beval\(|new Function/);
  });
});
