import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FrameOutput, JobInfo, StreamInfo } from '../../src/server/schemas.js';
import { csvHeader } from '../../src/pipeline/labels-format.js';
import { startTestServer, waitFor } from './helpers.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;

async function waitForJob(t: Server, id: string, states = ['done', 'failed', 'cancelled']) {
  return waitFor(async () => {
    const job = JobInfo.parse(await (await t.api(`/api/jobs/${id}`)).json());
    return states.includes(job.state) ? job : undefined;
  }, 10_000, `job ${id}`);
}

/** Checks Prometheus text format: HELP/TYPE before samples, every sample `name{labels} value`. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  assert.ok(text.endsWith('\n'));
  for (const line of text.trimEnd().split('\n')) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        assert.match(meta[3]!, /^(counter|gauge|histogram|summary|untyped)$/);
        typed.add(meta[2]!);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    assert.ok(typed.has(m[1]!), `sample before its TYPE line: ${line}`);
    samples.set(m[1]! + (m[2] ?? ''), Number(m[3]));
  }
  return samples;
}

describe('HTTP API (no token)', () => {
  let t: Server;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  it('answers health and info', async () => {
    const health = await t.api('/api/health');
    assert.equal(health.status, 200);
    assert.equal((await health.json()).status, 'ok');
    const info = await (await t.api('/api/info')).json();
    assert.deepEqual(info.classes, [...t.engine.classes]);
    assert.equal(info.auth, false);
  });

  it('opens, lists, shows and stops a stream', async () => {
    const res = await t.api('/api/streams', { method: 'POST', json: { source: 'rtsp://camera/1', name: 'door', fps: 10, smoothing: { kind: 'ema', alpha: 0.3 } } });
    assert.equal(res.status, 201);
    const { id } = await res.json();
    assert.equal(typeof id, 'string');
    const list = (await (await t.api('/api/streams')).json()) as unknown[];
    assert.ok(list.map((s) => StreamInfo.parse(s)).some((s) => s.id === id && s.name === 'door'));
    await waitFor(async () => StreamInfo.parse(await (await t.api(`/api/streams/${id}`)).json()).framesOut > 0, 15_000, 'frames');
    const one = StreamInfo.parse(await (await t.api(`/api/streams/${id}`)).json());
    assert.equal(one.state, 'live');
    const jpg = await t.api(`/api/streams/${id}/frame.jpg`);
    assert.equal(jpg.status, 200);
    assert.equal(jpg.headers.get('content-type'), 'image/jpeg');
    const bytes = new Uint8Array(await jpg.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 2)], [0xff, 0xd8]);
    // Stopped, it stays listed with its final state until deleted.
    const stop = await t.api(`/api/streams/${id}/stop`, { method: 'POST' });
    assert.equal(stop.status, 200);
    assert.equal(StreamInfo.parse(await stop.json()).state, 'stopped');
    assert.equal(StreamInfo.parse(await (await t.api(`/api/streams/${id}`)).json()).state, 'stopped');
    const listed = (await (await t.api('/api/streams')).json()) as unknown[];
    assert.equal(listed.map((s) => StreamInfo.parse(s)).find((s) => s.id === id)?.state, 'stopped');
    assert.equal((await t.api(`/api/streams/${id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await t.api(`/api/streams/${id}`)).status, 404);
    assert.ok(!((await (await t.api('/api/streams')).json()) as { id: string }[]).some((s) => s.id === id));
    assert.equal((await t.api(`/api/streams/${id}`, { method: 'DELETE' })).status, 404);
    assert.equal(t.engine.listenerCount(), 0, 'the hub stops listening to a stopped stream');
  });

  it('rejects bad stream bodies with 400 and refused sources with 422', async () => {
    for (const json of [{}, { source: 5 }, { source: '' }, { source: 'x', fps: -1 }, { source: 'x', extra: 1 }, { source: 'x', smoothing: { kind: 'centred' } }, [1]]) {
      const res = await t.api('/api/streams', { method: 'POST', json });
      assert.equal(res.status, 400, JSON.stringify(json));
      const body = await res.json();
      assert.equal(body.error, 'bad request');
      assert.equal(typeof body.detail, 'string');
    }
    const malformed = await t.api('/api/streams', { method: 'POST', body: '{"source":', headers: { 'content-type': 'application/json' } });
    assert.equal(malformed.status, 400);
    const refused = await t.api('/api/streams', { method: 'POST', json: { source: 'bad://nowhere' } });
    assert.equal(refused.status, 422);
    assert.match((await refused.json()).detail, /unsupported scheme/);
  });

  it('answers 404 JSON for unknown ids and routes', async () => {
    for (const p of ['/api/streams/nope', '/api/streams/nope/frame.jpg', '/api/jobs/nope', '/api/jobs/nope/labels.csv', '/api/jobs/nope/labels.jsonl', '/api/nothing']) {
      const res = await t.api(p);
      assert.equal(res.status, 404, p);
      assert.ok((await res.json()).error, p);
    }
    assert.equal((await t.api('/api/jobs/nope', { method: 'DELETE' })).status, 404);
  });

  it('labels a media file named by path, and serves CSV and JSONL', async () => {
    writeFileSync(path.join(t.mediaDir, 'clip.txt'), 'FAKEVIDEO 25');
    const res = await t.api('/api/jobs', { method: 'POST', json: { path: 'clip.txt', smoothing: { kind: 'centred', window: 2 } } });
    assert.equal(res.status, 201);
    const job = JobInfo.parse(await res.json());
    assert.equal(job.name, 'clip.txt');
    assert.ok(await t.api('/api/jobs').then((r) => r.json()).then((l: { id: string }[]) => l.some((j) => j.id === job.id)));
    const done = await waitForJob(t, job.id);
    assert.equal(done.state, 'done');
    assert.equal(done.framesDone, 25);
    assert.equal(done.progress, 1);
    const csv = await t.api(`/api/jobs/${job.id}/labels.csv`);
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-disposition') ?? '', /clip\.labels\.csv/);
    const lines = (await csv.text()).trimEnd().split('\n');
    assert.equal(lines[0], csvHeader(t.engine.classes));
    // 25 frames, one face each except frames 9 and 19 which have none (and still get a row).
    assert.equal(lines.length, 1 + 25);
    assert.equal(lines.filter((l) => l.split(',')[2] === '').length, 2);
    const jsonl = (await (await t.api(`/api/jobs/${job.id}/labels.jsonl`)).text()).trimEnd().split('\n');
    assert.equal(jsonl.length, 25);
    assert.deepEqual(jsonl.map((l) => FrameOutput.parse(JSON.parse(l)).frame), [...Array(25).keys()]);
    const removed = await t.api(`/api/jobs/${job.id}`, { method: 'DELETE' });
    assert.equal(removed.status, 200);
    assert.equal((await t.api(`/api/jobs/${job.id}`)).status, 404);
  });

  it('refuses job paths outside the media folders, missing files and bad bodies', async () => {
    const outside = mkdtempSync(path.join(os.tmpdir(), 'arbex-outside-'));
    writeFileSync(path.join(outside, 'secret.txt'), 'FAKEVIDEO 3');
    symlinkSync(path.join(outside, 'secret.txt'), path.join(t.mediaDir, 'link.txt'));
    try {
      for (const p of [path.join(outside, 'secret.txt'), '../' + path.basename(outside) + '/secret.txt', 'link.txt', 'missing.mp4', '.']) {
        const res = await t.api('/api/jobs', { method: 'POST', json: { path: p } });
        assert.equal(res.status, 422, p);
        assert.equal((await res.json()).error, 'refused source');
      }
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
    for (const json of [{}, { path: 1 }, { path: 'a', detectEvery: 0 }, { path: 'a', smoothing: { kind: 'wobbly' } }]) {
      assert.equal((await t.api('/api/jobs', { method: 'POST', json })).status, 400, JSON.stringify(json));
    }
    const text = await t.api('/api/jobs', { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } });
    assert.equal(text.status, 415);
  });

  it('labels an uploaded video and deletes the upload afterwards', async () => {
    const form = new FormData();
    form.append('name', 'upload.mp4');
    form.append('smoothing', JSON.stringify({ kind: 'ema', alpha: 0.5 }));
    form.append('file', new Blob(['FAKEVIDEO 12']), 'upload.mp4');
    const res = await t.api('/api/jobs', { method: 'POST', body: form });
    assert.equal(res.status, 201, await res.clone().text());
    const done = await waitForJob(t, (await res.json()).id);
    assert.equal(done.state, 'done');
    assert.equal(done.framesDone, 12);
    const csv = await (await t.api(`/api/jobs/${done.id}/labels.csv`)).text();
    assert.equal(csv.trimEnd().split('\n').length, 13);
    const bad = new FormData();
    bad.append('smoothing', '{not json');
    bad.append('file', new Blob(['FAKEVIDEO 1']), 'x.mp4');
    assert.equal((await t.api('/api/jobs', { method: 'POST', body: bad })).status, 400);
    const noFile = new FormData();
    noFile.append('name', 'x');
    assert.equal((await t.api('/api/jobs', { method: 'POST', body: noFile })).status, 400);
  });

  it('refuses an upload that is not a video with 422, before queuing it', async () => {
    const form = new FormData();
    form.append('file', new Blob(['this is not a video']), 'broken.mp4');
    const res = await t.api('/api/jobs', { method: 'POST', body: form });
    assert.equal(res.status, 422);
    const body = await res.json();
    assert.equal(body.error, 'not a video');
    assert.match(body.detail, /broken\.mp4: Invalid data/);
    assert.ok(t.server.jobs.list().every((j) => j.name !== 'broken.mp4'));
  });

  it('ends a job whose video fails to decode with a clear error, and 409 for its labels', async () => {
    const form = new FormData();
    form.append('file', new Blob(['FAKEVIDEO 10 FAILAT 4']), 'broken.mp4');
    const res = await t.api('/api/jobs', { method: 'POST', body: form });
    assert.equal(res.status, 201);
    const failed = await waitForJob(t, (await res.json()).id);
    assert.equal(failed.state, 'failed');
    assert.match(failed.error ?? '', /broken\.mp4: corrupt frame 4/);
    const csv = await t.api(`/api/jobs/${failed.id}/labels.csv`);
    assert.equal(csv.status, 409);
  });

  it('cancels a running job', async () => {
    writeFileSync(path.join(t.mediaDir, 'long.txt'), 'FAKEVIDEO 100000');
    const job = JobInfo.parse(await (await t.api('/api/jobs', { method: 'POST', json: { path: 'long.txt' } })).json());
    const running = await waitFor(async () => {
      const j = JobInfo.parse(await (await t.api(`/api/jobs/${job.id}`)).json());
      return j.framesDone > 5 ? j : undefined;
    }, 5000, 'progress');
    assert.equal(running.state, 'running');
    assert.equal(running.framesTotal, 100000);
    assert.ok(running.etaSeconds !== undefined && running.etaSeconds > 0);
    const res = await t.api(`/api/jobs/${job.id}`, { method: 'DELETE' });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).state, 'cancelled');
  });

  it('serves metrics as Prometheus text', async () => {
    const res = await t.api('/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const samples = parsePrometheus(await res.text());
    for (const name of ['arbex_ws_clients', 'arbex_ws_queue_depth', 'arbex_engine_batch_size_mean', 'arbex_engine_inference_ms_mean', 'arbex_engine_batches_total', 'arbex_upload_bytes_total']) {
      assert.ok(samples.has(name), name);
    }
    assert.ok((samples.get('arbex_upload_bytes_total') ?? 0) > 0);
    assert.ok([...samples.keys()].some((k) => k.startsWith('arbex_http_requests_total{code="404"}')));
  });

  it('serves an OpenAPI document listing every route', async () => {
    const doc = await (await t.api('/api/openapi.json')).json();
    assert.match(doc.openapi, /^3\./);
    for (const p of ['/api/streams', '/api/streams/{id}', '/api/streams/{id}/frame.jpg', '/api/jobs', '/api/jobs/{id}', '/api/jobs/{id}/labels.csv', '/api/jobs/{id}/labels.jsonl', '/api/health', '/metrics']) {
      assert.ok(doc.paths[p], p);
    }
    assert.equal(doc.components.schemas.CreateStreamBody.type, 'object');
    assert.ok(doc.components.schemas.CreateStreamBody.required.includes('source'));
  });

  it('serves the dashboard files', async () => {
    for (const [p, type] of [['/', 'text/html'], ['/app.js', 'text/javascript'], ['/style.css', 'text/css']] as const) {
      const res = await t.api(p);
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get('content-type') ?? '', new RegExp(`^${type}`));
    }
    assert.equal((await t.api('/..%2Fpackage.json')).status, 404);
  });
});

describe('upload limits', () => {
  let t: Server;
  before(async () => {
    t = await startTestServer({ limits: { maxUploadBytes: 4096 } });
  });
  after(() => t.close());

  it('answers 413 from Content-Length before reading the body', async () => {
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(10_000)]), 'big.mp4');
    const res = await t.api('/api/jobs', { method: 'POST', body: form });
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error, 'payload too large');
  });

  it('answers 413 for a chunked upload that grows past the limit', async () => {
    const boundary = 'xyzBOUNDARYxyz';
    const enc = new TextEncoder();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n`));
        else if (sent < 20) controller.enqueue(new Uint8Array(1024));
        else controller.close();
        sent++;
      },
    });
    const res = await t.api('/api/jobs', {
      method: 'POST',
      body,
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      duplex: 'half',
    } as RequestInit);
    assert.equal(res.status, 413);
    assert.deepEqual(t.server.jobs.list(), []);
  });
});

describe('HTTP API with a token', () => {
  let t: Server;
  const token = 's3cret-token';
  before(async () => {
    t = await startTestServer({ token });
  });
  after(() => t.close());

  it('requires the bearer token on the API and metrics but not on health and the dashboard', async () => {
    for (const p of ['/api/streams', '/api/jobs', '/api/info', '/api/openapi.json', '/metrics']) {
      const none = await fetch(t.url + p);
      assert.equal(none.status, 401, p);
      assert.equal((await none.json()).error, 'unauthorized');
      assert.equal((await fetch(t.url + p, { headers: { authorization: 'Bearer wrong' } })).status, 401, p);
      assert.equal((await fetch(t.url + p, { headers: { authorization: `Bearer ${token}x` } })).status, 401, p);
      assert.equal((await t.api(p)).status, 200, p);
    }
    // A token in the URL is accepted on the WebSocket only (browsers cannot set headers there).
    assert.equal((await fetch(`${t.url}/api/streams?token=${token}`)).status, 401);
    assert.equal((await fetch(`${t.url}/api/streams`, { method: 'POST' })).status, 401);
    for (const p of ['/api/health', '/', '/app.js', '/style.css']) assert.equal((await fetch(t.url + p)).status, 200, p);
    assert.equal((await (await t.api('/api/info')).json()).auth, true);
  });
});
