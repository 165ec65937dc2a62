/**
 * Cluster figures (docs/SCALING.md), one JSON line each:
 * - `nats-transport`: what one prediction message costs through NATS alone: a real message's
 *   size, then `count` such messages published and received in this process (msgs/s, MB/s,
 *   CPU µs per message, both ends together);
 * - `streams`: a real cluster (nats-server, one gateway and 1 then 2 workers as `arbex serve
 *   --nats` processes, the configured weights) running `streams` looped copies of the demo video:
 *   predicted frames/s over all streams as they arrive on NATS, prediction bytes/s, and the
 *   gateway's hop (the same frame's arrival on NATS and on a WebSocket client of the gateway,
 *   p50/p95 ms).
 *
 * `npm run bench -- cluster [seconds=20] [streams=4] [fps=10]`. Needs `nats-server` on the PATH.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { WebSocket } from 'ws';
import { initBackend } from '../src/backends/index.js';
import { ROOT } from '../src/env.js';
import { describeMachine, type Machine } from './machine.js';

const print = (line: object) => console.log(JSON.stringify(line));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number) => Math.round(x * 10) / 10;
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function start(command: string, args: string[], env: Record<string, string>) {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, output: () => out, exited: new Promise((r) => child.once('exit', r)) };
}

async function until<T>(check: () => T | Promise<T>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A prediction of one face, as a worker publishes it (the size that matters). */
const SAMPLE = JSON.stringify({
  stream: '3f0c9a2e-5d7b-4c1e-9f3a-1b2c3d4e5f60',
  frame: 123456,
  ptsMs: 4938240,
  faces: 1,
  results: [
    {
      track: 7,
      box: { x: 212.5, y: 96.25, w: 140.5, h: 168.75 },
      landmarks5: [[250.1, 150.2], [310.3, 148.4], [281.5, 185.6], [258.7, 220.8], [305.9, 219.1]],
      primary: [0.0512, 0.0234, 0.0123, 0.0231, 0.8012, 0.0412, 0.0476],
      corrected: [0.0312, 0.0134, 0.0113, 0.0221, 0.8612, 0.0312, 0.0296],
      confidence: 0.7134,
      label: 'Happiness',
      smoothed: [0.0412, 0.0184, 0.0118, 0.0226, 0.8312, 0.0362, 0.0386],
      smoothedLabel: 'Happiness',
    },
  ],
});

async function transport(url: string, auth: { user: string; pass: string }, machine: Machine, count = 100_000) {
  const nc = await connect({ servers: url, ...auth });
  const data = new TextEncoder().encode(SAMPLE);
  let received = 0;
  const done = new Promise<void>((resolve) => {
    nc.subscribe('bench.pred.*', {
      callback: () => {
        if (++received === count) resolve();
      },
    });
  });
  await nc.flush();
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    nc.publish('bench.pred.s', data);
    if (i % 1000 === 999) await nc.flush();
  }
  await done;
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  print({
    bench: 'cluster',
    figure: 'nats-transport',
    messageBytes: data.length,
    messages: count,
    msgsPerSecond: Math.round(count / seconds),
    mbPerSecond: round((count * data.length) / seconds / 1e6),
    cpuMicrosPerMessage: round((used.user + used.system) / count),
    machine,
  });
  await nc.close();
}

export async function run(args: string[]): Promise<void> {
  const seconds = Number(args[0] ?? 20);
  const streamCount = Number(args[1] ?? 4);
  const fps = Number(args[2] ?? 10);
  if (spawnSync('nats-server', ['--version']).status !== 0) throw new Error('nats-server is not installed (apt-get install nats-server)');
  const video = [path.join(ROOT, 'media', 'demo.mp4'), path.join(ROOT, 'test', 'fixtures', 'media', 'face_pan.mp4')].find(existsSync);
  if (!video) throw new Error('no video to stream (media/demo.mp4 or test/fixtures/media/face_pan.mp4)');
  const machine = describeMachine(await initBackend(undefined, { log: false }));
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'arbex-bench-cluster-'));
  const port = await freePort();
  const natsUrl = `nats://127.0.0.1:${port}`;
  const auth = { user: 'bench', pass: Math.random().toString(36).slice(2) };
  const procs: ReturnType<typeof start>[] = [];
  const nats = start('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', path.join(tmp, 'nats'), '--user', auth.user, '--pass', auth.pass], {});
  procs.push(nats);
  try {
    await until(() => /Server is ready/.test(nats.output()), 20_000, 'nats-server');
    await transport(natsUrl, auth, machine);

    const env = {
      ARBEX_NATS_URL: natsUrl,
      ARBEX_NATS_USER: auth.user,
      ARBEX_NATS_PASSWORD: auth.pass,
      ARBEX_MEDIA_DIRS: path.dirname(video),
      ARBEX_DATA_DIR: path.join(tmp, 'data'),
      ARBEX_TOKEN: '',
      PORT: '',
      HOST: '',
    };
    const arbex = (args: string[], extra: Record<string, string> = {}) => start(process.execPath, [path.join(ROOT, 'bin', 'arbex.js'), 'serve', ...args], { ...env, ...extra });
    const gateway = arbex(['--role', 'gateway', '--port', '0']);
    procs.push(gateway);
    const url = (await until(() => /serving on (http:\/\/\S+)/.exec(gateway.output())?.[1], 180_000, 'the gateway')) as string;
    const ids: string[] = [];
    for (let i = 0; i < streamCount; i++) {
      const res = await fetch(`${url}/api/streams`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ source: path.basename(video), name: `bench${i}`, fps, loop: true }) });
      ids.push(((await res.json()) as { id: string }).id);
    }
    // One subscriber on NATS and one WebSocket client on the gateway see the same frames.
    const nc = await connect({ servers: natsUrl, ...auth });
    const onNats = new Map<string, number>();
    let natsBytes = 0;
    let natsFrames = 0;
    nc.subscribe('arbex.pred.*', {
      callback: (_e, m) => {
        const o = m.json<{ stream: string; frame: number }>();
        onNats.set(`${o.stream}/${o.frame}`, performance.now());
        natsBytes += m.data.length;
        natsFrames++;
      },
    });
    const hops: number[] = [];
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', stream: '*' })));
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as { type: string; stream: string; frame: number };
      if (m.type !== 'prediction') return;
      const at = onNats.get(`${m.stream}/${m.frame}`);
      if (at !== undefined) hops.push(performance.now() - at);
    });

    const workers: ChildProcess[] = [];
    for (const n of [1, 2]) {
      const w = arbex(['--role', 'worker', '--workers', '0'], { ARBEX_WORKER_ID: `bench-w${n}` });
      procs.push(w);
      workers.push(w.child);
      const health = async () => ((await (await fetch(`${url}/api/health`)).json()) as { cluster: { workers: { streams: number }[]; unassigned: number } }).cluster;
      await until(async () => {
        const h = await health();
        return h.workers.length === n && h.unassigned === 0 && Math.max(...h.workers.map((x) => x.streams)) - Math.min(...h.workers.map((x) => x.streams)) <= 1;
      }, 180_000, `${n} workers sharing the streams`);
      await sleep(5000); // streams connect and settle
      const f0 = natsFrames;
      const b0 = natsBytes;
      hops.length = 0;
      const cpu0 = os.loadavg()[0];
      await sleep(seconds * 1000);
      const frames = natsFrames - f0;
      const sorted = [...hops].sort((a, b) => a - b);
      print({
        bench: 'cluster',
        figure: 'streams',
        workers: n,
        streams: streamCount,
        fpsRequested: fps * streamCount,
        seconds,
        framesPerSecond: round(frames / seconds),
        predictionBytesPerSecond: Math.round((natsBytes - b0) / seconds),
        meanMessageBytes: frames ? Math.round((natsBytes - b0) / frames) : 0,
        gatewayHopP50Ms: round(quantile(sorted, 0.5)),
        gatewayHopP95Ms: round(quantile(sorted, 0.95)),
        load1Before: round(cpu0),
        machine: { ...machine, load1: round(os.loadavg()[0]) },
      });
    }
    ws.close();
    await nc.close();
  } finally {
    for (const p of procs.reverse()) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await Promise.race([Promise.all(procs.map((p) => p.exited)), sleep(15_000)]);
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await rm(tmp, { recursive: true, force: true });
  }
}
