/**
 * Soak test (not in CI): a real `arbex serve` with 3 looped streams of the test clip and 20
 * WebSocket clients for N minutes. Every `--every` seconds it prints one JSON line: the server's
 * RSS, heap and event-loop delay (sampled inside it by bench/soak-probe.mjs), /api/health latency
 * p50/p95 as a separate client process sees it (one request every 100 ms), predictions per second
 * per client (min / median / max), drops (reported to clients, and by the pipeline), the hub's
 * queues and the streams' rates from /metrics, and the load average. A last line sums it up.
 *
 * `npm run soak -- --minutes 30 [--streams 3] [--clients 20] [--every 30] [--fps N] [--weights DIR]`
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { ROOT } from '../src/env.js';
import { FACE_PAN } from '../test/fixtures/media.js';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    minutes: { type: 'string', default: '30' },
    streams: { type: 'string', default: '3' },
    clients: { type: 'string', default: '20' },
    every: { type: 'string', default: '30' },
    fps: { type: 'string' },
    weights: { type: 'string' },
  },
});
const minutes = Number(values.minutes);
const streamCount = Number(values.streams);
const clientCount = Number(values.clients);
const everyMs = Number(values.every) * 1000;

const print = (line: object) => console.log(JSON.stringify(line));
const MiB = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;
const round = (x: number) => Math.round(x * 10) / 10;
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : NaN;
};

/** /api/health from its own process, so the soak's clients do not colour the latency. */
const HEALTH = `
const url = process.argv[1];
let latencies = [];
process.stdin.on('data', () => { process.stdout.write(JSON.stringify(latencies) + '\\n'); latencies = []; }).resume();
process.stdin.on('end', () => process.exit(0));
(async () => {
  for (;;) {
    const t0 = performance.now();
    try { await fetch(url).then((r) => r.arrayBuffer()); latencies.push(performance.now() - t0); } catch { latencies.push(-1); }
    await new Promise((r) => setTimeout(r, 100));
  }
})();
`;

function metricsOf(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m) out.set(m[1]! + (m[2] ?? ''), Number(m[3]));
  }
  return out;
}
const sumOf = (metrics: Map<string, number>, name: string) => [...metrics].filter(([k]) => k === name || k.startsWith(`${name}{`)).reduce((s, [, v]) => s + v, 0);

interface Client {
  ws?: WebSocket;
  predictions: number;
  dropped: number;
  reconnects: number;
  errors: number;
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'arbex-soak-data-'));
  const mediaDir = mkdtempSync(path.join(os.tmpdir(), 'arbex-soak-media-'));
  copyFileSync(FACE_PAN, path.join(mediaDir, 'face_pan.mp4'));
  const server = spawn(
    process.execPath,
    ['--import', path.join(ROOT, 'bench', 'soak-probe.mjs'), path.join(ROOT, 'bin', 'arbex.js'), 'serve', '--port', '0', '--no-demo', ...(values.weights ? ['--weights', values.weights] : [])],
    {
      cwd: ROOT,
      env: { ...process.env, ARBEX_DATA_DIR: dataDir, ARBEX_MEDIA_DIRS: mediaDir, ARBEX_TOKEN: '', PORT: '', HOST: '', ARBEX_SOAK_PROBE: '1', ARBEX_SOAK_SAMPLE_MS: String(everyMs) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  let url = '';
  const probes: Record<string, number>[] = [];
  let pending = '';
  server.stdout.on('data', (d: Buffer) => {
    pending += d.toString();
    let i: number;
    while ((i = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, i);
      pending = pending.slice(i + 1);
      if (line.startsWith('arbex-soak-probe ')) probes.push(JSON.parse(line.slice('arbex-soak-probe '.length)) as Record<string, number>);
      else {
        log += `${line}\n`;
        url ||= /serving on (http:\/\/\S+)/.exec(line)?.[1] ?? '';
      }
    }
  });
  server.stderr.on('data', (d) => (log += d));
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const startWait = Date.now();
  while (!url) {
    if (server.exitCode !== null) throw new Error(`arbex serve exited:\n${log}`);
    if (Date.now() - startWait > 300_000) throw new Error(`arbex serve did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  const api = (p: string, init?: RequestInit) => fetch(url + p, init);
  for (let i = 0; i < streamCount; i++) {
    const res = await api('/api/streams', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ source: path.join(mediaDir, 'face_pan.mp4'), name: `soak-${i + 1}`, loop: true, ...(values.fps ? { fps: Number(values.fps) } : {}) }),
    });
    if (res.status !== 201) throw new Error(`opening a stream: ${res.status} ${await res.text()}`);
  }

  const clients: Client[] = Array.from({ length: clientCount }, () => ({ predictions: 0, dropped: 0, reconnects: 0, errors: 0 }));
  let stopping = false;
  const connect = (c: Client) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`);
    c.ws = ws;
    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', stream: '*' })));
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as { type: string; count?: number };
      if (m.type === 'prediction') c.predictions++;
      else if (m.type === 'dropped') c.dropped += m.count!;
      else if (m.type === 'error') c.errors++;
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      if (stopping) return;
      c.reconnects++;
      setTimeout(() => connect(c), 1000);
    });
  };
  clients.forEach(connect);

  const health = spawn(process.execPath, ['-e', HEALTH, `${url}/api/health`], { stdio: ['pipe', 'pipe', 'inherit'] });
  let healthOut = '';
  health.stdout.on('data', (d) => (healthOut += d));
  const healthWindow = async (): Promise<number[]> => {
    const before = healthOut.length;
    health.stdin.write('\n');
    while (!healthOut.slice(before).includes('\n')) await new Promise((r) => setTimeout(r, 10));
    const line = healthOut.slice(before, healthOut.indexOf('\n', before));
    return JSON.parse(line) as number[];
  };

  print({ soak: 'start', url, minutes, streams: streamCount, clients: clientCount, everySeconds: everyMs / 1000, cpus: os.cpus().length, cpu: os.cpus()[0]?.model.trim(), memoryGiB: round(os.totalmem() / 2 ** 30), load: os.loadavg().map(round) });
  const t0 = Date.now();
  const end = t0 + minutes * 60_000;
  let last = { at: t0, predictions: clients.map(() => 0), dropped: 0, framesOut: 0, pipelineDrops: 0 };
  const rows: { t: number; rssMiB: number; heapUsedMiB: number; healthP95Ms: number; loopP95Ms: number }[] = [];
  const allHealth: number[] = [];
  await healthWindow();
  while (Date.now() < end && server.exitCode === null) {
    await new Promise((r) => setTimeout(r, Math.min(everyMs, end - Date.now())));
    const now = Date.now();
    const seconds = (now - last.at) / 1000;
    const latencies = (await healthWindow()).filter((x) => x >= 0);
    allHealth.push(...latencies);
    const metrics = metricsOf(await (await api('/metrics')).text());
    const probe = probes.at(-1) ?? {};
    const perClient = clients.map((c, i) => (c.predictions - last.predictions[i]!) / seconds);
    const dropped = clients.reduce((s, c) => s + c.dropped, 0);
    const framesOut = sumOf(metrics, 'arbex_stream_frames_out_total');
    const pipelineDrops = sumOf(metrics, 'arbex_stream_drops_total');
    const row = {
      soak: 'sample',
      t: Math.round((now - t0) / 1000),
      rssMiB: MiB(probe.rss ?? NaN),
      heapUsedMiB: MiB(probe.heapUsed ?? NaN),
      heapTotalMiB: MiB(probe.heapTotal ?? NaN),
      externalMiB: MiB(probe.external ?? NaN),
      loopP50Ms: probe.loopP50Ms,
      loopP95Ms: probe.loopP95Ms,
      loopMaxMs: probe.loopMaxMs,
      healthRequests: latencies.length,
      healthP50Ms: round(quantile(latencies, 0.5)),
      healthP95Ms: round(quantile(latencies, 0.95)),
      healthMaxMs: round(Math.max(...latencies)),
      streamFpsOut: round((framesOut - last.framesOut) / seconds),
      pipelineDrops: pipelineDrops - last.pipelineDrops,
      clientPredPerSec: { min: round(Math.min(...perClient)), median: round(quantile(perClient, 0.5)), max: round(Math.max(...perClient)) },
      clientDrops: dropped - last.dropped,
      wsClients: metrics.get('arbex_ws_clients'),
      wsQueueDepth: metrics.get('arbex_ws_queue_depth'),
      wsBufferedKiB: Math.round((metrics.get('arbex_ws_buffered_bytes') ?? 0) / 1024),
      reconnects: clients.reduce((s, c) => s + c.reconnects, 0),
      errors: clients.reduce((s, c) => s + c.errors, 0),
      streamsLive: metrics.get('arbex_streams{state="live"}') ?? 0,
      load1: round(os.loadavg()[0]!),
    };
    print(row);
    rows.push({ t: row.t, rssMiB: row.rssMiB, heapUsedMiB: row.heapUsedMiB, healthP95Ms: row.healthP95Ms, loopP95Ms: row.loopP95Ms ?? NaN });
    last = { at: now, predictions: clients.map((c) => c.predictions), dropped, framesOut, pipelineDrops };
  }

  stopping = true;
  const crashed = server.exitCode !== null;
  for (const c of clients) c.ws?.terminate();
  health.stdin.end();
  // Least squares slope of RSS over the second half: growth that would go on.
  const tail = rows.slice(Math.floor(rows.length / 2));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const slope = (ys: number[]) => {
    const ts = tail.map((r) => r.t / 3600);
    const mt = mean(ts);
    const my = mean(ys);
    return ts.reduce((s, t, i) => s + (t - mt) * (ys[i]! - my), 0) / ts.reduce((s, t) => s + (t - mt) ** 2, 0);
  };
  print({
    soak: 'end',
    minutes: round((Date.now() - t0) / 60_000),
    serverUp: !crashed,
    rssMiB: { first: rows[0]?.rssMiB, last: rows.at(-1)?.rssMiB, max: Math.max(...rows.map((r) => r.rssMiB)) },
    rssSlopeSecondHalfMiBPerHour: tail.length > 2 ? round(slope(tail.map((r) => r.rssMiB))) : null,
    heapUsedMiB: { first: rows[0]?.heapUsedMiB, last: rows.at(-1)?.heapUsedMiB, max: Math.max(...rows.map((r) => r.heapUsedMiB)) },
    heapSlopeSecondHalfMiBPerHour: tail.length > 2 ? round(slope(tail.map((r) => r.heapUsedMiB))) : null,
    healthRequests: allHealth.length,
    healthP50Ms: round(quantile(allHealth, 0.5)),
    healthP95Ms: round(quantile(allHealth, 0.95)),
    healthMaxMs: round(Math.max(...allHealth)),
    loopP95MsWorstSample: Math.max(...rows.map((r) => r.loopP95Ms)),
    predictionsPerClient: { min: Math.min(...clients.map((c) => c.predictions)), max: Math.max(...clients.map((c) => c.predictions)) },
    clientDrops: clients.reduce((s, c) => s + c.dropped, 0),
    reconnects: clients.reduce((s, c) => s + c.reconnects, 0),
    load: os.loadavg().map(round),
  });
  server.kill('SIGTERM');
  await exited;
  await rm(dataDir, { recursive: true, force: true });
  await rm(mediaDir, { recursive: true, force: true });
  if (crashed) {
    console.error(log);
    process.exitCode = 1;
  }
}

await main();
