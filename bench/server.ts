/**
 * Server robustness figures (docs/RELIABILITY.md):
 * - `multipart-junk`: CPU time to receive an upload followed by 32 MiB of bytes after its closing
 *   boundary (the old hand-written parser took 16 s of CPU; busboy skips them);
 * - `health-during-job`: /api/health latency, as a separate client process sees it, while a
 *   labelling job runs on the real engine (demo weights, the demo video), with the job in the
 *   server's process (before) and in a job process (`arbex serve`'s way), plus the server's own
 *   event-loop delay over the same time; `no job` is the machine's noise floor.
 *
 * `npm run bench -- server [seconds]` (seconds of video per job, default 8).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { initBackend } from '../src/backends/index.js';
import { ROOT } from '../src/env.js';
import { defaultFfmpeg } from '../src/ingest/ffmpeg.js';
import { loadFaceModel } from '../src/model/face-model.js';
import { createEngine } from '../src/pipeline/engine.js';
import type { Engine } from '../src/pipeline/types.js';
import { createServer } from '../src/server/index.js';
import { JOB_ENGINE_MODULE } from '../src/server/job-engine.js';
import { createProcessRunner } from '../src/server/job-process.js';
import { inProcessRunner, type JobRunner } from '../src/server/job-runner.js';
import { receiveMultipart } from '../src/server/multipart.js';
import { describeMachine, type Machine } from './machine.js';

const print = (line: object) => console.log(JSON.stringify(line));

async function multipartJunk(machine: Machine): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'arbex-bench-mp-'));
  const b = 'BenchBoundary';
  const head = Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nDATA\r\n--${b}--\r\n`);
  const junk = Buffer.alloc(1 << 20, `\r\n--${b}`);
  async function* body() {
    yield head;
    for (let i = 0; i < 32; i++) yield junk;
  }
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await receiveMultipart(body(), `multipart/form-data; boundary=${b}`, { dest: path.join(dir, 'up'), maxBytes: 64 << 20 });
  const used = process.cpuUsage(cpu);
  print({ bench: 'server', figure: 'multipart-junk', junkMiB: 32, cpuMs: Math.round((used.user + used.system) / 1000), wallMs: Math.round(performance.now() - t0), machine });
  await rm(dir, { recursive: true });
}

const CLIENT = `
const url = process.argv[1];
const latencies = [];
let stop = false;
process.stdin.on('data', () => {}).on('end', () => (stop = true)).resume();
(async () => {
  while (!stop) {
    const t0 = performance.now();
    await fetch(url).then((r) => r.arrayBuffer());
    latencies.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 20));
  }
  process.stdout.write(JSON.stringify(latencies));
})();
`;

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
const round = (x: number) => Math.round(x * 10) / 10;

/** /api/health latency from a client process, and this process's event-loop delay, until `done()` says so. */
async function sampleHealth(url: string, done: () => Promise<boolean>) {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const client = spawn(process.execPath, ['-e', CLIENT, `${url}/api/health`], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  client.stdout.on('data', (d) => (out += d));
  const t0 = performance.now();
  while (!(await done())) await new Promise((r) => setTimeout(r, 200));
  const seconds = (performance.now() - t0) / 1000;
  client.stdin.end();
  await new Promise((r) => client.once('exit', r));
  loop.disable();
  const latencies = (JSON.parse(out) as number[]).sort((a, b) => a - b);
  return {
    seconds: round(seconds),
    requests: latencies.length,
    p50Ms: round(quantile(latencies, 0.5)),
    p95Ms: round(quantile(latencies, 0.95)),
    maxMs: round(latencies.at(-1) ?? NaN),
    eventLoopDelayP95Ms: round(loop.percentile(95) / 1e6),
    eventLoopDelayMaxMs: round(loop.max / 1e6),
  };
}

/** `runner` undefined: no job, the machine's noise floor over `idleSeconds`. */
async function healthDuringJob(engine: Engine, mode: string, runner: JobRunner | undefined, mediaDir: string, machine: Machine, idleSeconds: number): Promise<void> {
  const server = createServer({ engine, settings: { port: 0, host: '127.0.0.1', mediaDirs: [mediaDir] }, ...(runner ? { jobRunner: runner } : {}) });
  const { url } = await server.listen();
  try {
    if (!runner) {
      const end = Date.now() + idleSeconds * 1000;
      print({ bench: 'server', figure: 'health-during-job', mode, ...(await sampleHealth(url, async () => Date.now() > end)), machine });
      return;
    }
    const res = await fetch(`${url}/api/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'clip.mp4' }) });
    const { id } = (await res.json()) as { id: string };
    const job = async () => (await (await fetch(`${url}/api/jobs/${id}`)).json()) as { state: string; framesDone: number };
    // Measured while frames are being labelled (a job process first loads its model).
    while ((await job()).framesDone === 0) await new Promise((r) => setTimeout(r, 50));
    let last = await job();
    const stats = await sampleHealth(url, async () => {
      last = await job();
      return last.state !== 'running' && last.state !== 'queued';
    });
    print({ bench: 'server', figure: 'health-during-job', mode, job: last.state, frames: last.framesDone, ...stats, machine });
  } finally {
    await server.close();
  }
}

export async function run(args: string[]): Promise<void> {
  const seconds = Number(args[0] ?? 8);
  const backend = await initBackend(undefined, { log: false });
  const machine = describeMachine(backend);
  await multipartJunk(machine);

  const mediaDir = mkdtempSync(path.join(os.tmpdir(), 'arbex-bench-media-'));
  const ffmpeg = defaultFfmpeg().path;
  execFileSync(ffmpeg, ['-v', 'error', '-y', '-i', path.join(ROOT, 'media', 'demo.mp4'), '-t', String(seconds), '-an', '-c:v', 'libx264', '-preset', 'ultrafast', path.join(mediaDir, 'clip.mp4')]);
  const weightsDir = path.join(ROOT, 'weights', 'demo');
  const workers = Math.min(4, os.availableParallelism() - 1);
  const engine = await createEngine({ model: await loadFaceModel(weightsDir, { workers }), settings: { mediaDirs: [mediaDir], ffmpegPath: ffmpeg } });
  try {
    await healthDuringJob(engine, 'no job', undefined, mediaDir, machine, 10);
    await healthDuringJob(engine, 'in-process', inProcessRunner(engine), mediaDir, machine, 0);
    const spec = { weightsDir, backend: backend.name, workers, ffmpegPath: ffmpeg };
    await healthDuringJob(engine, 'job-process', createProcessRunner({ module: JOB_ENGINE_MODULE, spec }), mediaDir, machine, 0);
  } finally {
    await engine.close();
    await rm(mediaDir, { recursive: true, force: true });
  }
}
