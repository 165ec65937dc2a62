/**
 * Nothing lost across restarts of a real `arbex serve`: `kill -9` in the middle of a job, then a
 * restart on the same data folder, lists the finished job with its labels and labels the
 * interrupted one again; SIGTERM keeps finished jobs and queues a running one again; the job
 * processes never outlive the server; /api/health answers while a job runs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../../src/env.js';
import { defaultFfmpeg } from '../../src/ingest/ffmpeg.js';
import type { JobInfo as Job } from '../../src/server/jobs.js';
import { JobInfo } from '../../src/server/schemas.js';
import { waitFor } from '../server/helpers.js';
import { alive, startServe, type Serve } from './serve.js';

const DEMO = path.join(ROOT, 'media', 'demo.mp4');
let dataDir: string;
let mediaDir: string;
const running: Serve[] = [];

/** The first `seconds` of the demo video, re-encoded so that every frame is there. */
function clip(name: string, seconds: number): string {
  const out = path.join(mediaDir, name);
  execFileSync(defaultFfmpeg().path, ['-v', 'error', '-y', '-i', DEMO, '-t', String(seconds), '-an', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', out]);
  return out;
}

async function serve(): Promise<Serve> {
  const s = await startServe({ dataDir, mediaDir });
  running.push(s);
  return s;
}

const jobOf = async (s: Serve, id: string) => JobInfo.parse(await (await fetch(`${s.url}/api/jobs/${id}`)).json());
const settled = (s: Serve, id: string) =>
  waitFor(async () => {
    const j = await jobOf(s, id);
    return ['done', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
  }, 300_000, `job ${id}`);
const post = async (s: Serve, body: unknown) => {
  const res = await fetch(`${s.url}/api/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 201, await res.clone().text());
  return JobInfo.parse(await res.json());
};
const upload = async (s: Serve, file: string) => {
  const form = new FormData();
  form.append('file', new Blob([readFileSync(file)]), path.basename(file));
  const res = await fetch(`${s.url}/api/jobs`, { method: 'POST', body: form });
  assert.equal(res.status, 201, await res.clone().text());
  return JobInfo.parse(await res.json());
};

describe('arbex serve: kill -9 and SIGTERM lose nothing', () => {
  before(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'arbex-restart-data-'));
    mediaDir = mkdtempSync(path.join(os.tmpdir(), 'arbex-restart-media-'));
    clip('short.mp4', 1);
    clip('long.mp4', 6);
  });
  after(async () => {
    for (const s of running) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    await rm(mediaDir, { recursive: true, force: true });
  });

  let short: Job;
  let long: Job;
  let shortCsv: string;

  it('kill -9 mid-job: the restart lists the finished job with its labels and labels the interrupted one again', async () => {
    const a = await serve();
    short = await settled(a, (await post(a, { path: 'short.mp4' })).id);
    assert.equal(short.state, 'done', short.error);
    assert.equal(short.framesDone, 25);
    shortCsv = await (await fetch(`${a.url}/api/jobs/${short.id}/labels.csv`)).text();
    assert.ok(shortCsv.trimEnd().split('\n').length >= 1 + 25, 'a row for every frame at least');

    long = await upload(a, path.join(mediaDir, 'long.mp4'));
    await waitFor(async () => (await jobOf(a, long.id)).framesDone > 0, 120_000, 'the long job to make progress');
    // The API answers while the job runs in its own process.
    const latencies: number[] = [];
    for (let i = 0; i < 40; i++) {
      const t0 = performance.now();
      assert.equal((await fetch(`${a.url}/api/health`)).status, 200);
      latencies.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 25));
    }
    latencies.sort((x, y) => x - y);
    console.log(`# /api/health while a job runs: p50 ${latencies[20]!.toFixed(1)} ms, p95 ${latencies[38]!.toFixed(1)} ms (not asserted)`);
    const children = a.jobProcesses();
    assert.equal(children.length, 1, 'the job runs in a job process');
    a.child.kill('SIGKILL');
    await a.exited;
    await waitFor(() => children.every((pid) => !alive(pid)), 10_000, 'the job process to exit with the server');

    const b = await serve();
    const list = JobInfo.array().parse(await (await fetch(`${b.url}/api/jobs`)).json());
    assert.deepEqual(list.map((j) => j.id).sort(), [short.id, long.id].sort());
    assert.equal((await jobOf(b, short.id)).state, 'done');
    assert.equal(await (await fetch(`${b.url}/api/jobs/${short.id}/labels.csv`)).text(), shortCsv);
    const again = await settled(b, long.id);
    assert.equal(again.state, 'done', again.error);
    assert.equal(again.framesDone, 150);
    const jsonl = (await (await fetch(`${b.url}/api/jobs/${long.id}/labels.jsonl`)).text()).trimEnd().split('\n');
    assert.equal(jsonl.length, 150);
    assert.deepEqual(readdirSync(path.join(dataDir, 'jobs', long.id)).sort(), ['job.json', 'labels.csv', 'labels.jsonl'], 'no partial files, the upload deleted');
    b.child.kill('SIGTERM');
    assert.equal(await b.exited, 0, b.output());
  });

  it('SIGTERM keeps finished jobs and queues a running one again', async () => {
    const c = await serve();
    const third = await post(c, { path: 'long.mp4', name: 'third' });
    await waitFor(async () => (await jobOf(c, third.id)).framesDone > 0, 120_000, 'the third job to make progress');
    const children = c.jobProcesses();
    c.child.kill('SIGTERM');
    assert.equal(await c.exited, 0, c.output());
    assert.ok(children.every((pid) => !alive(pid)), 'job processes stopped with the server');

    const d = await serve();
    try {
      assert.equal((await jobOf(d, short.id)).state, 'done');
      assert.equal(await (await fetch(`${d.url}/api/jobs/${short.id}/labels.csv`)).text(), shortCsv);
      assert.equal((await jobOf(d, long.id)).state, 'done');
      assert.ok(['queued', 'running'].includes((await jobOf(d, third.id)).state));
      const done = await settled(d, third.id);
      assert.equal(done.state, 'done', done.error);
      assert.equal(done.framesDone, 150);
    } finally {
      d.child.kill('SIGTERM');
      await d.exited;
    }
  });
});
