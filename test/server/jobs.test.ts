/**
 * Jobs that survive restarts, caps that answer 413/429, files that fail to write, inputs opened
 * once, and jobs in a separate process: the server around the fake engine, on a data folder the
 * tests control, restarted as `arbex serve` would be.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Limits } from '../../src/env.js';
import type { VideoProbe } from '../../src/ingest/probe.js';
import { createServer } from '../../src/server/index.js';
import { createProcessRunner } from '../../src/server/job-process.js';
import type { JobRunner } from '../../src/server/job-runner.js';
import { FrameOutput, JobInfo } from '../../src/server/schemas.js';
import { createFakeEngine, probeFake, type FakeEngineOptions } from './fake-engine.js';
import { sleep, waitFor } from './helpers.js';

const FAKE_JOB_ENGINE = fileURLToPath(new URL('./fake-job-engine.ts', import.meta.url));
const cleanup: string[] = [];
after(async () => {
  for (const d of cleanup) await rm(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanup.push(d);
  return d;
}

interface StartOptions {
  dataDir: string;
  mediaDir: string;
  limits?: Partial<Limits>;
  fake?: FakeEngineOptions;
  probe?: (file: string, name: string) => Promise<VideoProbe>;
  jobRunner?: JobRunner;
}

/** A server on a given data folder, as `arbex serve` would start on ARBEX_DATA_DIR. */
async function start(o: StartOptions) {
  const engine = createFakeEngine(o.fake);
  const server = createServer({
    engine,
    settings: { port: 0, host: '127.0.0.1', mediaDirs: [o.mediaDir] },
    dataDir: o.dataDir,
    limits: o.limits,
    probe: o.probe ?? probeFake,
    jobRunner: o.jobRunner,
  });
  const { url } = await server.listen();
  const api = (p: string, init: RequestInit & { json?: unknown } = {}) => {
    const { json, ...rest } = init;
    return fetch(url + p, json === undefined ? rest : { ...rest, method: rest.method ?? 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(json) });
  };
  const upload = (name: string, content: string) => {
    const form = new FormData();
    form.append('file', new Blob([content]), name);
    return api('/api/jobs', { method: 'POST', body: form });
  };
  const job = async (id: string) => JobInfo.parse(await (await api(`/api/jobs/${id}`)).json());
  const settled = (id: string, ms = 20_000) =>
    waitFor(async () => {
      const j = await job(id);
      return ['done', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
    }, ms, `job ${id}`);
  return {
    url,
    server,
    api,
    upload,
    job,
    settled,
    async close() {
      await server.close();
      await engine.close();
    },
  };
}

const created = async (res: Response) => {
  assert.equal(res.status, 201, await res.clone().text());
  return JobInfo.parse(await res.json());
};

describe('durable jobs', () => {
  it('keeps finished jobs and their labels across a restart, and queues unfinished ones again', async () => {
    const dataDir = tempDir('arbex-data-');
    const mediaDir = tempDir('arbex-media-');
    writeFileSync(path.join(mediaDir, 'short.txt'), 'FAKEVIDEO 5');
    const a = await start({ dataDir, mediaDir });
    const done = await a.settled((await created(await a.api('/api/jobs', { json: { path: 'short.txt' } }))).id);
    assert.equal(done.state, 'done');
    const csv = await (await a.api(`/api/jobs/${done.id}/labels.csv`)).text();
    const long = await created(await a.upload('long.mp4', 'FAKEVIDEO 1500'));
    await waitFor(async () => (await a.job(long.id)).framesDone > 10, 10_000, 'the long job to run');
    await a.close(); // what SIGTERM does

    const b = await start({ dataDir, mediaDir });
    try {
      const list = JobInfo.array().parse(await (await b.api('/api/jobs')).json());
      assert.deepEqual(list.map((j) => j.id).sort(), [done.id, long.id].sort());
      assert.equal((await b.job(done.id)).state, 'done');
      assert.equal(await (await b.api(`/api/jobs/${done.id}/labels.csv`)).text(), csv);
      assert.ok(['queued', 'running'].includes((await b.job(long.id)).state));
      const again = await b.settled(long.id, 120_000); // 1500 frames: about 15 s here, much longer on a loaded machine
      assert.equal(again.state, 'done', again.error);
      assert.equal(again.framesDone, 1500);
      const jsonl = (await (await b.api(`/api/jobs/${long.id}/labels.jsonl`)).text()).trimEnd().split('\n');
      assert.equal(jsonl.length, 1500);
      assert.deepEqual(readdirSync(path.join(dataDir, 'jobs', long.id)).sort(), ['job.json', 'labels.csv', 'labels.jsonl'], 'the uploaded input is deleted once labelled');
    } finally {
      await b.close();
    }
  });

  it('after a crash: runs interrupted jobs again, fails one interrupted too often, reclaims stale files', async () => {
    const dataDir = tempDir('arbex-data-');
    const mediaDir = tempDir('arbex-media-');
    const jobsDir = path.join(dataDir, 'jobs');
    // What a kill -9 leaves: records saying "running", partial labels, an upload half received,
    // and a job folder created just before the crash, without its record.
    const record = (id: string, attempts: number) => {
      mkdirSync(path.join(jobsDir, id), { recursive: true });
      writeFileSync(path.join(jobsDir, id, 'input'), 'FAKEVIDEO 7');
      writeFileSync(path.join(jobsDir, id, '.labels.csv.partial-4242'), 'frame,');
      const info = { id, name: `${id}.mp4`, state: 'running', framesDone: 3, createdAt: new Date().toISOString(), startedAt: new Date().toISOString() };
      writeFileSync(path.join(jobsDir, id, 'job.json'), JSON.stringify({ info, request: { uploadBytes: 11 }, attempts }));
    };
    record('interrupted', 1);
    record('crashes-the-server', 3);
    mkdirSync(path.join(jobsDir, 'no-record'));
    writeFileSync(path.join(jobsDir, 'no-record', 'input'), 'x');
    mkdirSync(path.join(dataDir, 'uploads'));
    writeFileSync(path.join(dataDir, 'uploads', 'half.part'), 'x'.repeat(1000));

    const s = await start({ dataDir, mediaDir });
    try {
      assert.equal(existsSync(path.join(jobsDir, 'no-record')), false);
      assert.equal(existsSync(path.join(dataDir, 'uploads', 'half.part')), false);
      const again = await s.settled('interrupted');
      assert.equal(again.state, 'done', again.error);
      assert.equal(again.framesDone, 7);
      const failed = await s.job('crashes-the-server');
      assert.equal(failed.state, 'failed');
      assert.match(failed.error ?? '', /interrupted 3 times/);
      assert.equal(existsSync(path.join(jobsDir, 'crashes-the-server', '.labels.csv.partial-4242')), false);
    } finally {
      await s.close();
    }
  });

  it('prunes finished jobs beyond the retention count', async () => {
    const s = await start({ dataDir: tempDir('arbex-data-'), mediaDir: tempDir('arbex-media-'), limits: { keepJobs: 2 } });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        const j = await created(await s.upload(`v${i}.mp4`, 'FAKEVIDEO 2'));
        await s.settled(j.id);
        ids.push(j.id);
        await sleep(5); // distinct finish times
      }
      // Pruning follows a job's end: the last job reads 'done' a moment before the prune after
      // it has run (long enough on a loaded machine), so wait for the list to shrink.
      const listed = async () => JobInfo.array().parse(await (await s.api('/api/jobs')).json()).map((j) => j.id);
      const left = await waitFor(async () => {
        const now = await listed();
        return now.length <= 2 ? now : undefined;
      }, 10_000, 'the finished jobs to be pruned to 2');
      assert.deepEqual([...left].sort(), ids.slice(2).sort());
    } finally {
      await s.close();
    }
  });
});

describe('limits', () => {
  it('answers 429 for a full queue and a spent upload budget, 413 for long videos and large JSON, 429 past the stream cap', async () => {
    const mediaDir = tempDir('arbex-media-');
    writeFileSync(path.join(mediaDir, 'slow.txt'), 'FAKEVIDEO 40');
    writeFileSync(path.join(mediaDir, 'long.txt'), 'FAKEVIDEO 1000');
    const s = await start({
      dataDir: tempDir('arbex-data-'),
      mediaDir,
      fake: { labelDelayMs: 50 },
      limits: { maxQueuedJobs: 1, maxQueuedUploadBytes: 300, maxJobFrames: 100, maxStreams: 2 },
    });
    try {
      const long = await s.api('/api/jobs', { json: { path: 'long.txt' } });
      assert.equal(long.status, 413);
      assert.deepEqual(await long.json(), { error: 'video too long', detail: 'long.txt has about 1000 frames, the limit is 100' });

      const big = await s.upload('big.mp4', `FAKEVIDEO 3${' '.repeat(400)}`);
      assert.equal(big.status, 429);
      assert.equal((await big.json()).error, 'too many uploads');

      const running = await created(await s.api('/api/jobs', { json: { path: 'slow.txt' } }));
      await waitFor(async () => (await s.job(running.id)).state === 'running', 5000, 'the first job to run');
      await created(await s.api('/api/jobs', { json: { path: 'slow.txt' } }));
      const full = await s.api('/api/jobs', { json: { path: 'slow.txt' } });
      assert.equal(full.status, 429);
      assert.equal((await full.json()).error, 'too many jobs');
      assert.equal((await s.upload('x.mp4', 'FAKEVIDEO 1')).status, 429, 'an upload is refused before it is read');

      const json = JSON.stringify({ source: 'rtsp://camera/1', name: 'x'.repeat(100 * 1024) });
      const tooBig = await s.api('/api/streams', { method: 'POST', headers: { 'content-type': 'application/json' }, body: json });
      assert.equal(tooBig.status, 413);
      assert.equal((await tooBig.json()).error, 'payload too large');
      const chunked = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode(json));
          c.close();
        },
      });
      const tooBigChunked = await s.api('/api/streams', { method: 'POST', headers: { 'content-type': 'application/json' }, body: chunked, duplex: 'half' } as RequestInit);
      assert.equal(tooBigChunked.status, 413);

      const ids: string[] = [];
      for (let i = 0; i < 2; i++) ids.push((await (await s.api('/api/streams', { json: { source: `rtsp://camera/${i}` } })).json()).id);
      const third = await s.api('/api/streams', { json: { source: 'rtsp://camera/3' } });
      assert.equal(third.status, 429);
      assert.equal((await third.json()).error, 'too many streams');
      assert.equal((await s.api(`/api/streams/${ids[0]}`, { method: 'DELETE' })).status, 204);
      assert.equal((await s.api('/api/streams', { json: { source: 'rtsp://camera/3' } })).status, 201);
    } finally {
      await s.close();
    }
  });

  it('fails a job at the frame limit when the container did not tell its length', async () => {
    const noLength = async (file: string, name: string) => ({ ...(await probeFake(file, name)), frames: undefined, durationSec: undefined });
    const s = await start({ dataDir: tempDir('arbex-data-'), mediaDir: tempDir('arbex-media-'), probe: noLength, limits: { maxJobFrames: 20 } });
    try {
      const failed = await s.settled((await created(await s.upload('liar.mp4', 'FAKEVIDEO 500'))).id);
      assert.equal(failed.state, 'failed');
      assert.equal(failed.error, 'liar.mp4 has more than 20 frames, the limit per job');
    } finally {
      await s.close();
    }
  });
});

describe('storage failures', () => {
  it('fails only the job whose labels cannot be written (disk full)', { skip: !existsSync('/dev/full') && 'no /dev/full' }, async () => {
    const dataDir = tempDir('arbex-data-');
    const mediaDir = tempDir('arbex-media-');
    writeFileSync(path.join(mediaDir, 'blocker.txt'), 'FAKEVIDEO 100000');
    const s = await start({ dataDir, mediaDir });
    try {
      const blocker = await created(await s.api('/api/jobs', { json: { path: 'blocker.txt' } }));
      const victim = await created(await s.upload('victim.mp4', 'FAKEVIDEO 50'));
      // Its labels will be written through this name: every write fails with ENOSPC.
      symlinkSync('/dev/full', path.join(dataDir, 'jobs', victim.id, `.labels.csv.partial-${process.pid}`));
      await s.api(`/api/jobs/${blocker.id}`, { method: 'DELETE' });
      const failed = await s.settled(victim.id);
      assert.equal(failed.state, 'failed');
      assert.match(failed.error ?? '', /^could not write the labels: ENOSPC/);
      const next = await s.settled((await created(await s.upload('next.mp4', 'FAKEVIDEO 5'))).id);
      assert.equal(next.state, 'done');
    } finally {
      await s.close();
    }
  });

  it('answers 500 when a job folder cannot be created, and goes on', async () => {
    const dataDir = tempDir('arbex-data-');
    const mediaDir = tempDir('arbex-media-');
    writeFileSync(path.join(mediaDir, 'clip.txt'), 'FAKEVIDEO 3');
    const s = await start({ dataDir, mediaDir });
    try {
      rmSync(path.join(dataDir, 'jobs'), { recursive: true });
      writeFileSync(path.join(dataDir, 'jobs'), 'not a folder');
      const res = await s.api('/api/jobs', { json: { path: 'clip.txt' } });
      assert.equal(res.status, 500);
      assert.deepEqual(await res.json(), { error: 'storage failed', detail: 'could not store the job (ENOTDIR)' });
      assert.equal((await s.upload('u.mp4', 'FAKEVIDEO 3')).status, 500);
      unlinkSync(path.join(dataDir, 'jobs'));
      assert.equal((await s.settled((await created(await s.api('/api/jobs', { json: { path: 'clip.txt' } }))).id)).state, 'done');
    } finally {
      await s.close();
    }
  });

  it('answers 500 for an upload whose temporary folder is removed while it arrives, and takes the next one', async () => {
    const dataDir = tempDir('arbex-data-');
    const s = await start({ dataDir, mediaDir: tempDir('arbex-media-') });
    try {
      const boundary = 'b0und4ry';
      const enc = new TextEncoder();
      let step = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (step === 0) c.enqueue(enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nFAKEVIDEO 3`));
          else if (step === 1) {
            const uploads = path.join(dataDir, 'uploads');
            await waitFor(() => existsSync(uploads) && readdirSync(uploads).length > 0, 5000, 'the upload file');
            rmSync(uploads, { recursive: true });
            c.enqueue(enc.encode(' more bytes'));
          } else if (step === 2) c.enqueue(enc.encode(`\r\n--${boundary}--\r\n`));
          else c.close();
          step++;
        },
      });
      const res = await s.api('/api/jobs', { method: 'POST', body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, duplex: 'half' } as RequestInit);
      assert.equal(res.status, 500);
      assert.deepEqual(await res.json(), { error: 'storage failed', detail: 'could not store the upload (ENOENT)' });
      assert.equal((await s.settled((await created(await s.upload('b.mp4', 'FAKEVIDEO 3'))).id)).state, 'done');
    } finally {
      await s.close();
    }
  });
});

describe('job inputs', () => {
  it('reads the file that was checked: a symbolic link swapped in after submission is not followed', async () => {
    const mediaDir = tempDir('arbex-media-');
    const outside = tempDir('arbex-outside-');
    writeFileSync(path.join(mediaDir, 'blocker.txt'), 'FAKEVIDEO 100000');
    writeFileSync(path.join(mediaDir, 'clip.txt'), 'FAKEVIDEO 5');
    writeFileSync(path.join(outside, 'secret.txt'), 'FAKEVIDEO 7');
    const s = await start({ dataDir: tempDir('arbex-data-'), mediaDir });
    try {
      const blocker = await created(await s.api('/api/jobs', { json: { path: 'blocker.txt' } }));
      const clip = await created(await s.api('/api/jobs', { json: { path: 'clip.txt' } }));
      unlinkSync(path.join(mediaDir, 'clip.txt'));
      symlinkSync(path.join(outside, 'secret.txt'), path.join(mediaDir, 'clip.txt'));
      await s.api(`/api/jobs/${blocker.id}`, { method: 'DELETE' });
      const done = await s.settled(clip.id);
      assert.equal(done.state, 'done');
      assert.equal(done.framesDone, 5, 'the checked file, not the one behind the new link');
    } finally {
      await s.close();
    }
  });
});

describe('jobs in a separate process', () => {
  const jobChildren = () => {
    try {
      return execFileSync('pgrep', ['-P', String(process.pid), '-f', 'job-child']).toString().trim().split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };

  it('labels in a job process, cancels it, and survives its crash', async () => {
    const s = await start({
      dataDir: tempDir('arbex-data-'),
      mediaDir: tempDir('arbex-media-'),
      jobRunner: createProcessRunner({ module: FAKE_JOB_ENGINE, spec: { labelDelayMs: 1 }, killGraceMs: 2000 }),
    });
    try {
      const done = await s.settled((await created(await s.upload('a.mp4', 'FAKEVIDEO 30'))).id, 60_000);
      assert.equal(done.state, 'done', done.error);
      const lines = (await (await s.api(`/api/jobs/${done.id}/labels.jsonl`)).text()).trimEnd().split('\n');
      const streams = new Set(lines.map((l) => FrameOutput.parse(JSON.parse(l)).stream));
      assert.equal(streams.size, 1);
      assert.notEqual([...streams][0], `pid-${process.pid}`, 'labelled in another process');

      const cancelled = await created(await s.upload('b.mp4', 'FAKEVIDEO 100000'));
      await waitFor(async () => (await s.job(cancelled.id)).framesDone > 0, 60_000, 'the job to start');
      const res = await s.api(`/api/jobs/${cancelled.id}`, { method: 'DELETE' });
      assert.equal((await res.json()).state, 'cancelled');
      await waitFor(() => jobChildren().length === 0, 5000, 'the job process to exit');

      const crashed = await created(await s.upload('c.mp4', 'FAKEVIDEO 100000'));
      await waitFor(async () => (await s.job(crashed.id)).framesDone > 0, 60_000, 'the job to start');
      for (const pid of jobChildren()) process.kill(pid, 'SIGKILL');
      const failed = await s.settled(crashed.id);
      assert.equal(failed.state, 'failed');
      assert.match(failed.error ?? '', /job process ended without a result \(SIGKILL\)/);
      assert.equal((await s.api('/api/health')).status, 200);
    } finally {
      await s.close();
    }
  });
});

describe('labels downloads', () => {
  it('answers 404 when a done job lost its labels', async () => {
    const dataDir = tempDir('arbex-data-');
    const s = await start({ dataDir, mediaDir: tempDir('arbex-media-') });
    try {
      const done = await s.settled((await created(await s.upload('a.mp4', 'FAKEVIDEO 2'))).id);
      unlinkSync(path.join(dataDir, 'jobs', done.id, 'labels.csv'));
      const res = await s.api(`/api/jobs/${done.id}/labels.csv`);
      assert.equal(res.status, 404);
      assert.equal((await res.json()).error, 'labels missing');
      assert.ok(readFileSync(path.join(dataDir, 'jobs', done.id, 'labels.jsonl'), 'utf8').length > 0);
    } finally {
      await s.close();
    }
  });
});
