/**
 * Issue 11, item 5: camera credentials never leave the server: not in API answers, error
 * messages, WebSocket events, metrics or logs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { redact } from '../../src/ingest/index.js';
import type { FaceModel } from '../../src/model/types.js';
import { createEngine } from '../../src/pipeline/engine.js';
import type { Engine } from '../../src/pipeline/types.js';
import { createServer } from '../../src/server/index.js';
import { probeFake } from './fake-engine.js';
import { startTestServer, waitFor } from './helpers.js';

const SECRET = 'hunter2';
const CAMERA = `rtsp://admin:${SECRET}@10.0.0.5:554/live`;
const SHOWN = 'rtsp://admin:***@10.0.0.5:554/live';

describe('redact', () => {
  it('hides passwords, bare user-info tokens and secret query values in any text', () => {
    const cases: [string, string][] = [
      [CAMERA, SHOWN],
      [`could not connect to ${CAMERA}; retrying`, `could not connect to ${SHOWN}; retrying`],
      ['rtsps://admin:p@ss@cam.local/x', 'rtsps://admin:***@cam.local/x'],
      ['rtsp://tok3n@cam/x', 'rtsp://***@cam/x'],
      ['http://cam/video.cgi?user=admin&pwd=hunter2&res=hd', 'http://cam/video.cgi?user=admin&pwd=***&res=hd'],
      ['https://cdn.example/live.m3u8?token=abc&Signature=xyz', 'https://cdn.example/live.m3u8?token=***&Signature=***'],
      ['http://cam/a@b', 'http://cam/a@b'],
      ['rtsp://cam.local/stream', 'rtsp://cam.local/stream'],
      ['two: http://a:b@h1/ and rtsp://c:d@h2/', 'two: http://a:***@h1/ and rtsp://c:***@h2/'],
    ];
    for (const [text, shown] of cases) {
      assert.equal(redact(text), shown, text);
      assert.equal(redact(redact(text)), shown, `${text}, twice`);
    }
  });
});


describe('every exit of the server', () => {
  let t: Awaited<ReturnType<typeof startTestServer>>;
  let id: string;
  before(async () => {
    t = await startTestServer({ fake: { intervalMs: 50 } });
    // The stream is named after its source, as the real engine does when no name is given.
    const res = await t.api('/api/streams', { method: 'POST', json: { source: CAMERA, name: CAMERA } });
    id = ((await res.json()) as { id: string }).id;
    // The fake engine keeps what it was given; make its info say why it failed, quoting the source.
    const handle = t.engine.streams().find((h) => h.id === id)!;
    const info = handle.info.bind(handle);
    handle.info = () => ({ ...info(), lastError: `could not connect to ${CAMERA}` });
  });
  after(() => t.close());

  it('API answers: the stream list and the stream', async () => {
    const list = await (await t.api('/api/streams')).text();
    const one = await (await t.api(`/api/streams/${id}`)).json();
    assert.ok(!list.includes(SECRET), list);
    assert.equal(one.source, SHOWN);
    assert.equal(one.name, SHOWN);
    assert.equal(one.lastError, `could not connect to ${SHOWN}`);
  });

  it('error messages', async () => {
    const res = await t.api('/api/streams', { method: 'POST', json: { source: `bad://admin:${SECRET}@cam/x` } });
    assert.equal(res.status, 422);
    const body = await res.text();
    assert.ok(!body.includes(SECRET), body);
    assert.match(body, /bad:\/\/admin:\*\*\*@cam\/x/);
  });

  it('metrics', async () => {
    const text = await (await t.api('/metrics')).text();
    assert.ok(!text.includes(SECRET));
    assert.match(text, /name="rtsp:\/\/admin:\*\*\*@10\.0\.0\.5:554\/live"/);
  });

  it('WebSocket events: the state on subscribing and every change', async () => {
    const ws = new WebSocket(t.wsUrl);
    const messages: string[] = [];
    ws.on('message', (d) => messages.push(d.toString()));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'subscribe', stream: id }));
    await waitFor(() => messages.some((m) => JSON.parse(m).type === 'stream'), 3000, 'the stream state');
    // A state change whose error and info quote the source, credentials included.
    const info = t.engine.streams().find((h) => h.id === id)!.info();
    t.engine.emit({ type: 'stream', info: { ...info, state: 'reconnecting' }, error: `ffmpeg failed on ${CAMERA}: 401 Unauthorized` });
    await waitFor(() => messages.some((m) => JSON.parse(m).state === 'reconnecting'), 3000, 'the state change');
    ws.close();
    const states = messages.map((m) => JSON.parse(m)).filter((m) => m.type === 'stream');
    assert.ok(!messages.join('\n').includes(SECRET));
    assert.equal(states[0].error, `could not connect to ${SHOWN}`);
    assert.equal(states.at(-1).error, `ffmpeg failed on ${SHOWN}: 401 Unauthorized`);
    assert.equal(states.at(-1).info.source, SHOWN);
    assert.equal(states.at(-1).info.lastError, `could not connect to ${SHOWN}`);
  });
});

describe('logs and the real engine', () => {
  it('a camera that refuses: the API says "could not connect", the log says why, neither shows the password', async () => {
    // A camera on loopback that answers 401 to everything (the test opts in to loopback sources).
    const camera = http.createServer((_req, res) => res.writeHead(401, { 'www-authenticate': 'Basic realm="cam"' }).end());
    await new Promise<void>((r) => camera.listen(0, '127.0.0.1', r));
    const source = `http://admin:${SECRET}@127.0.0.1:${(camera.address() as AddressInfo).port}/video.mjpeg`;
    const model: FaceModel = { classes: ['Neutral'], inputSize: 32, predict: async () => [], dispose() {} };
    const engine: Engine = await createEngine({ model, settings: { mediaDirs: [], network: { allowLoopback: true, allow: [], deny: [] } }, reconnect: { maxAttempts: 0 } });
    const server = createServer({ engine, probe: probeFake, settings: { port: 0, host: '127.0.0.1', mediaDirs: [] } });
    const { url } = await server.listen();
    const logged: string[] = [];
    const error = console.error;
    console.error = (...args: unknown[]) => void logged.push(args.map(String).join(' '));
    try {
      const res = await fetch(`${url}/api/streams`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ source }) });
      assert.equal(res.status, 201);
      const { id } = (await res.json()) as { id: string };
      const info = await waitFor(async () => {
        const i = await (await fetch(`${url}/api/streams/${id}`)).json();
        return i.state === 'failed' && i;
      }, 30_000, 'the stream to fail');
      assert.equal(info.lastError, `could not connect to ${redact(source)}`);
      assert.equal(info.source, redact(source));
      await waitFor(() => logged.some((l) => l.includes('401')), 5000, 'the log line');
    } finally {
      console.error = error;
      await server.close();
      await engine.close();
      await new Promise((r) => camera.close(r));
    }
    const log = logged.join('\n');
    assert.ok(!log.includes(SECRET), log);
    assert.match(log, /http:\/\/admin:\*\*\*@127\.0\.0\.1:\d+\/video\.mjpeg.*401/);
  });
});
