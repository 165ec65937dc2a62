/**
 * The server over the real engine (ffmpeg ingest, BlazeFace detection, tracking, batching,
 * smoothing) on a real video: in-process with a transparent model, and as the `arbex serve`
 * command with a small ARBEx model written to a temporary weights folder.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { initBackend } from '../../src/backends/index.js';
import { ROOT } from '../../src/env.js';
import { createArbex, saveArbex, validateArbexConfig } from '../../src/model/arbex.js';
import { createParams } from '../../src/model/nn/params.js';
import { createEngine } from '../../src/pipeline/engine.js';
import type { Engine, FrameOutput as Output } from '../../src/pipeline/types.js';
import { createServer, type ArbexServer } from '../../src/server/index.js';
import { FrameOutput, JobInfo, ServerMessage, StreamInfo } from '../../src/server/schemas.js';
import { waitFor } from './helpers.js';
import { FACE_PAN as VIDEO, MEDIA } from '../fixtures/media.js';
import { ffmpegChildren } from '../support/ffmpeg.js';
import { colourModel } from '../support/models.js';

const skip = existsSync(VIDEO) ? false : `${VIDEO} is absent`;
const CLASSES = ['Neutral', 'Happiness', 'Surprise'];

/** Subscribes to a stream and resolves with the first `n` predictions. */
function predictions(wsUrl: string, stream: string, n: number, headers: Record<string, string> = {}): Promise<Output[]> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { headers });
    const got: Output[] = [];
    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', stream })));
    ws.on('message', (data) => {
      const msg = ServerMessage.parse(JSON.parse(data.toString()));
      if (msg.type === 'error') reject(new Error(msg.error));
      if (msg.type !== 'prediction') return;
      const { type: _type, ...output } = msg;
      got.push(output);
      if (got.length === n) {
        ws.close();
        resolve(got);
      }
    });
    ws.on('error', reject);
  });
}

describe('server over the real engine', { skip }, () => {
  let engine: Engine;
  let server: ArbexServer;
  let url: string;
  const api = (p: string, init: RequestInit = {}) => fetch(url + p, init);
  const post = (p: string, body: unknown) => api(p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  before(async () => {
    engine = await createEngine({ model: colourModel(CLASSES), settings: { mediaDirs: [MEDIA] } });
    server = createServer({ engine, settings: { port: 0, host: '127.0.0.1', mediaDirs: [MEDIA] } });
    ({ url } = await server.listen());
  });
  after(async () => {
    await server.close();
    await engine.close();
  });

  it('streams a video: predictions on the WebSocket, the frame, metrics, and a clean stop', async () => {
    const res = await post('/api/streams', { source: 'face_pan.mp4', name: 'pan' });
    assert.equal(res.status, 201);
    const { id } = (await res.json()) as { id: string };
    const outs = await predictions(`${url.replace('http', 'ws')}/ws`, id, 10);
    assert.ok(outs.every((o) => o.stream === id && o.faces === 1 && o.results[0]!.corrected.length === CLASSES.length));
    assert.deepEqual(outs.map((o) => o.frame), outs.map((_, i) => outs[0]!.frame + i), 'consecutive frames');
    const info = StreamInfo.parse(await (await api(`/api/streams/${id}`)).json());
    assert.equal(info.state, 'live');
    const jpeg = new Uint8Array(await (await api(`/api/streams/${id}/frame.jpg`)).arrayBuffer());
    assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8]);
    const metrics = await (await api('/metrics')).text();
    assert.match(metrics, /^arbex_engine_frames_out_total [1-9]\d*$/m);
    assert.match(metrics, new RegExp(`^arbex_stream_frames_out_total\\{stream="${id}",name="pan"\\} [1-9]`, 'm'));
    assert.equal((await api(`/api/streams/${id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await api(`/api/streams/${id}`)).status, 404);
    assert.deepEqual(await ffmpegChildren(), []);
  });

  it('maps the engine refusing a source to 422', async () => {
    for (const source of ['/etc/passwd', 'concat:a.mp4|b.mp4']) {
      const res = await post('/api/streams', { source });
      assert.equal(res.status, 422, source);
      assert.equal(((await res.json()) as { error: string }).error, 'refused source');
    }
  });

  it('labels the video as a job: one CSV row per frame, JSONL in order', async () => {
    const res = await post('/api/jobs', { path: 'face_pan.mp4', smoothing: { kind: 'centred', window: 2 } });
    assert.equal(res.status, 201);
    const { id } = JobInfo.parse(await res.json());
    const done = await waitFor(async () => {
      const job = JobInfo.parse(await (await api(`/api/jobs/${id}`)).json());
      return job.state === 'done' || job.state === 'failed' ? job : undefined;
    }, 60_000, 'job');
    assert.equal(done.state, 'done', done.error);
    const csv = (await (await api(`/api/jobs/${id}/labels.csv`)).text()).trimEnd().split('\n');
    assert.equal(csv[0]!.split(',').length, 10 + 3 * CLASSES.length);
    assert.equal(csv.length - 1, done.framesDone, 'one face in every frame');
    const jsonl = (await (await api(`/api/jobs/${id}/labels.jsonl`)).text()).trimEnd().split('\n');
    assert.deepEqual(jsonl.map((l) => FrameOutput.parse(JSON.parse(l)).frame), [...Array(done.framesDone).keys()]);
  });

  it('refuses an uploaded file that is not a video before queuing it, with ffmpeg\'s reason', async () => {
    const form = new FormData();
    form.append('file', new Blob(['plain text, not a video\n']), 'notes.mp4');
    const res = await api('/api/jobs', { method: 'POST', body: form });
    assert.equal(res.status, 422);
    const body = (await res.json()) as { error: string; detail: string };
    assert.equal(body.error, 'not a video');
    assert.match(body.detail, /^not a video: notes\.mp4: /);
  });
});

describe('arbex serve', { skip }, () => {
  let weights: string;
  let child: ChildProcess | undefined;
  before(async () => {
    await initBackend(undefined, { log: false });
    weights = await mkdtemp(path.join(os.tmpdir(), 'arbex-serve-'));
    const config = validateArbexConfig({ classes: CLASSES, extractor: 'tiny', head: { hidden: [16], anchorsPerClass: 3, attention: { tokens: 4, heads: 2 } } });
    const model = createArbex(createParams(3), config, { seed: 3 });
    await saveArbex(weights, model);
    model.dispose();
  });
  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await rm(weights, { recursive: true, force: true });
  });

  it('serves a real model, requires its token, and shuts down cleanly on SIGTERM', async () => {
    const token = 'serve-token';
    const script = path.join(weights, 'serve.mjs');
    await writeFile(script, `const { run } = await import(${JSON.stringify(path.join(ROOT, 'src/cli/serve.ts'))});\nprocess.exitCode = await run(process.argv.slice(2));\n`);
    child = spawn(process.execPath, ['--import', 'tsx', script, '--port', '0', '--no-demo', '--weights', weights], {
      cwd: ROOT,
      env: { ...process.env, ARBEX_TOKEN: token, ARBEX_MEDIA_DIRS: MEDIA, ARBEX_DATA_DIR: path.join(weights, 'data'), PORT: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const url = await waitFor(() => /serving on (http:\/\/\S+)/.exec(out)?.[1], 60_000, `the URL (output: ${out})`);
    const auth = { authorization: `Bearer ${token}` };
    assert.equal((await fetch(`${url}/api/health`)).status, 200);
    assert.equal((await fetch(`${url}/api/streams`)).status, 401);
    const info = (await (await fetch(`${url}/api/info`, { headers: auth })).json()) as { classes: string[] };
    assert.deepEqual(info.classes, CLASSES);
    const res = await fetch(`${url}/api/streams`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ source: 'face_pan.mp4' }) });
    assert.equal(res.status, 201);
    const { id } = (await res.json()) as { id: string };
    const [first] = await predictions(`${url.replace('http', 'ws')}/ws`, id, 3, auth);
    assert.equal(first!.faces, 1);
    const face = first!.results[0]!;
    assert.ok(CLASSES.includes(face.label));
    assert.ok(Math.abs(face.corrected.reduce((a, b) => a + b, 0) - 1) < 1e-3);
    assert.ok((await ffmpegChildren(undefined, child.pid)).length > 0, 'the stream runs ffmpeg');
    const exit = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exit, 0, out);
    assert.match(out, /SIGTERM, shutting down/);
  });
});
