/**
 * The cluster for real: a `nats-server -js` on a free loopback port (user and password required),
 * gateways and workers as separate `arbex serve --nats` processes with a small ARBEx model, four
 * looping streams of the fixture video, WebSocket clients, SIGKILL of a worker, a worker joining,
 * labelling jobs (one interrupted by its worker's death) and NATS itself killed and restarted.
 * Skipped, saying so, where `nats-server` is not installed (.ci/apt-packages.txt lists it).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { initBackend } from '../../src/backends/index.js';
import { ROOT } from '../../src/env.js';
import { createArbex, saveArbex, validateArbexConfig } from '../../src/model/arbex.js';
import { createParams } from '../../src/model/nn/params.js';
import { openCluster, readClusterSettings, type ClusterResources } from '../../src/cluster/index.js';
import { JobInfo, ServerMessage } from '../../src/server/schemas.js';
import { FACE_PAN, MEDIA } from '../fixtures/media.js';
import { sleep, waitFor } from '../server/helpers.js';

const natsInstalled = spawnSync('nats-server', ['--version']).status === 0;
const skip = !natsInstalled
  ? 'nats-server is not installed (apt-get install nats-server; .ci/apt-packages.txt lists it)'
  : !existsSync(FACE_PAN)
    ? `${FACE_PAN} is absent`
    : false;

const CLASSES = ['Neutral', 'Happiness', 'Surprise'];
const LEASE_MS = 4000;
const USER = 'arbex';
const PASSWORD = randomBytes(12).toString('hex');

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

interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<unknown>;
}

function start(command: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { child, output: () => out, exited };
}

interface Streams {
  id: string;
  name: string;
  state: string;
  worker?: string;
}

/** A WebSocket client subscribed to every stream, keeping what it received. */
function watchAll(wsUrl: string) {
  const ws = new WebSocket(wsUrl);
  const predictions: { stream: string; at: number }[] = [];
  const states: { stream: string; state: string; error?: string; at: number }[] = [];
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => {
      ws.send(JSON.stringify({ type: 'subscribe', stream: '*' }));
      resolve();
    });
    ws.once('error', reject);
  });
  ws.on('message', (data) => {
    const msg = ServerMessage.parse(JSON.parse(data.toString()));
    if (msg.type === 'prediction') predictions.push({ stream: msg.stream, at: Date.now() });
    else if (msg.type === 'stream') states.push({ stream: msg.stream, state: msg.state, error: msg.error, at: Date.now() });
  });
  return {
    opened,
    predictions,
    states,
    /** Whether every stream in `ids` had a prediction after `since`. */
    allSince: (ids: string[], since: number) => ids.every((id) => predictions.some((p) => p.stream === id && p.at > since)),
    close: () => ws.close(),
  };
}

describe('cluster over NATS JetStream', { skip, timeout: 600_000 }, () => {
  let tmp: string;
  let weights: string;
  let natsPort: number;
  let natsUrl: string;
  let nats: Proc;
  let gateway: Proc;
  let url: string;
  const workers = new Map<string, Proc>();
  const others: Proc[] = [];
  let nc: ClusterResources | undefined;
  let client: ReturnType<typeof watchAll>;
  const streamIds: string[] = [];

  /** The recent output of every process, for a failure's message. */
  const dump = () =>
    [...workers].map(([id, w]) => `\n--- worker ${id} (exit ${w.child.exitCode ?? w.child.signalCode ?? 'none'}):\n${w.output().slice(-1500)}`).join('') +
    `\n--- gateway (exit ${gateway?.child.exitCode ?? gateway?.child.signalCode ?? 'none'}):\n${gateway?.output().slice(-1500)}`;
  /** waitFor, with the processes' output in the error. */
  const waitLogged = async <T>(check: () => T | Promise<T>, ms: number, what: string) => {
    try {
      return await waitFor(check, ms, what);
    } catch (e) {
      throw new Error(`${(e as Error).message}${dump()}`);
    }
  };
  const startNats = async () => {
    nats = start('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(natsPort), '-sd', path.join(tmp, 'nats'), '--user', USER, '--pass', PASSWORD]);
    await waitFor(() => /Server is ready/.test(nats.output()) || (nats.child.exitCode !== null && Promise.reject(new Error(nats.output()))), 30_000, 'nats-server');
  };
  const env = (extra: Record<string, string> = {}) => ({
    ARBEX_NATS_URL: natsUrl,
    ARBEX_NATS_USER: USER,
    ARBEX_NATS_PASSWORD: PASSWORD,
    ARBEX_MEDIA_DIRS: MEDIA,
    ARBEX_CLUSTER_LEASE_MS: String(LEASE_MS),
    ARBEX_CLUSTER_JOB_ACK_WAIT_MS: '4000',
    ARBEX_MAX_QUEUED_UPLOAD_MB: '256',
    ARBEX_CLUSTER_LABELS_MB: '256',
    ARBEX_DATA_DIR: path.join(tmp, `data-${randomBytes(3).toString('hex')}`),
    ARBEX_TOKEN: '',
    PORT: '',
    HOST: '',
    ...extra,
  });
  const startGateway = async () => {
    const g = start(process.execPath, [path.join(ROOT, 'bin', 'arbex.js'), 'serve', '--role', 'gateway', '--port', '0', '--weights', weights], env());
    const u = await waitFor(() => {
      if (g.child.exitCode !== null) throw new Error(`gateway exited: ${g.output()}`);
      return /serving on (http:\/\/\S+)/.exec(g.output())?.[1];
    }, 180_000, 'a gateway');
    return { proc: g, url: u };
  };
  const startWorker = (id: string) => {
    const w = start(process.execPath, [path.join(ROOT, 'bin', 'arbex.js'), 'serve', '--role', 'worker', '--workers', '0', '--weights', weights, '--capacity', '8'], env({ ARBEX_WORKER_ID: id }));
    workers.set(id, w);
    return w;
  };
  /**
   * fetch, tried again when the connection fails: on a starved machine a kept-alive connection
   * may be closed by the server's idle timeout just as the next request goes out ("fetch failed").
   */
  const api = async (p: string, init: RequestInit & { json?: unknown } = {}, base = url): Promise<Response> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fetch(base + p, { ...init, headers: init.json !== undefined ? { 'content-type': 'application/json' } : {}, body: init.json !== undefined ? JSON.stringify(init.json) : init.body });
      } catch (e) {
        if (attempt >= 3 || !(e instanceof TypeError)) throw e;
        await sleep(500);
      }
    }
  };
  /** Submits a job; a probe that timed out on a starved machine (422, "took over") is tried again. */
  const submitJob = async () => {
    for (let attempt = 1; ; attempt++) {
      const res = await api('/api/jobs', { method: 'POST', json: { path: 'face_pan.mp4', detectEvery: 25 } });
      const body = (await res.json()) as { detail?: string };
      if (res.status === 422 && /took over/.test(body.detail ?? '') && attempt < 3) continue;
      assert.equal(res.status, 201, JSON.stringify(body));
      return JobInfo.parse(body);
    }
  };
  const health = async (base = url) => ((await (await api('/api/health', {}, base)).json()) as { cluster: { workers: { id: string; streams: number }[]; warnings: string[]; connected: boolean; reconnects: number; unassigned: number } }).cluster;
  const streams = async () => (await (await api('/api/streams')).json()) as Streams[];
  const perWorker = async () => {
    const count: Record<string, number> = {};
    for (const s of await streams()) if (s.worker && s.state === 'live') count[s.worker] = (count[s.worker] ?? 0) + 1;
    return count;
  };
  const jobDone = (id: string, base = url, ms = 180_000) =>
    waitLogged(async () => {
      const job = JobInfo.extend({ worker: JobInfo.shape.name.optional(), attempts: JobInfo.shape.framesDone.optional() }).parse(await (await api(`/api/jobs/${id}`, {}, base)).json());
      return job.state === 'done' || job.state === 'failed' ? job : undefined;
    }, ms, `job ${id}`);

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'arbex-cluster-'));
    weights = path.join(tmp, 'weights');
    await initBackend(undefined, { log: false });
    const config = validateArbexConfig({ classes: CLASSES, extractor: 'tiny', head: { hidden: [16], anchorsPerClass: 3, attention: { tokens: 4, heads: 2 } } });
    const model = createArbex(createParams(3), config, { seed: 3 });
    await saveArbex(weights, model);
    model.dispose();
    natsPort = await freePort();
    natsUrl = `nats://127.0.0.1:${natsPort}`;
    await startNats();
    ({ proc: gateway, url } = await startGateway());
  });

  after(async () => {
    client?.close();
    await nc?.nc.close().catch(() => {});
    for (const p of [gateway, ...workers.values(), ...others, nats]) if (p && p.child.exitCode === null) p.child.kill('SIGKILL');
    await Promise.all([gateway, ...workers.values(), ...others, nats].filter(Boolean).map((p) => p.exited));
    await rm(tmp, { recursive: true, force: true });
  });

  it('refuses a NATS client without the password, and a gateway with no workers says so', async () => {
    const settings = readClusterSettings({ ARBEX_NATS_URL: natsUrl });
    await assert.rejects(openCluster(settings, { mediaMaxBytes: 1 << 20, labelsMaxBytes: 1 << 20, jobAckWaitMs: 4000 }, 'test'), /Authorization|auth/i);
    const h = await health();
    assert.equal(h.workers.length, 0);
    assert.match(h.warnings.join('\n'), /no worker is live/);
    const res = await api('/api/streams', { method: 'POST', json: { source: 'face_pan.mp4', name: 's0', fps: 3, loop: true } });
    assert.equal(res.status, 201);
    const { id } = (await res.json()) as { id: string };
    streamIds.push(id);
    const info = (await (await api(`/api/streams/${id}`)).json()) as { state: string; lastError?: string };
    assert.equal(info.state, 'connecting');
    assert.match(info.lastError ?? '', /no worker is live/);
    assert.equal((await api('/api/info').then((r) => r.json()) as { classes: string[] }).classes.join(), CLASSES.join(), 'classes from the weights');
  });

  it('spreads four streams two per worker; a WebSocket client receives every stream', async () => {
    startWorker('wa');
    startWorker('wb');
    for (const i of [1, 2, 3]) {
      const res = await api('/api/streams', { method: 'POST', json: { source: 'face_pan.mp4', name: `s${i}`, fps: 3, loop: true } });
      assert.equal(res.status, 201);
      streamIds.push(((await res.json()) as { id: string }).id);
    }
    client = watchAll(`${url.replace('http', 'ws')}/ws`);
    await client.opened;
    const spread = await waitLogged(async () => {
      const c = await perWorker();
      return c.wa === 2 && c.wb === 2 ? c : undefined;
    }, 300_000, 'two streams per worker');
    assert.deepEqual(spread, { wa: 2, wb: 2 });
    await waitLogged(() => client.allSince(streamIds, 0), 30_000, 'predictions of every stream');
    const h = await health();
    assert.deepEqual(h.workers.map((w) => [w.id, w.streams]).sort(), [['wa', 2], ['wb', 2]]);
    assert.deepEqual(h.warnings, []);
    const metrics = await (await api('/metrics')).text();
    assert.match(metrics, /^arbex_cluster_workers 2$/m);
    assert.match(metrics, /^arbex_cluster_worker_streams\{worker="wa",host="[^"]*"\} 2$/m);
    assert.match(metrics, /^arbex_cluster_job_queue_depth \d+$/m);
    const jpeg = await api(`/api/streams/${streamIds[0]}/frame.jpg`);
    assert.equal(jpeg.status, 200);
    assert.deepEqual([...new Uint8Array(await jpeg.arrayBuffer()).subarray(0, 2)], [0xff, 0xd8]);
  });

  it('labels a job on a worker; its labels download from a second gateway', async () => {
    const { id } = await submitJob();
    const second = await startGateway();
    others.push(second.proc);
    const done = await jobDone(id, second.url);
    assert.equal(done.state, 'done', done.error);
    assert.ok(['wa', 'wb'].includes(done.worker!));
    const csv = (await (await api(`/api/jobs/${id}/labels.csv`, {}, second.url)).text()).trimEnd().split('\n');
    assert.equal(csv.length - 1, done.framesDone);
    const jsonl = (await (await api(`/api/jobs/${id}/labels.jsonl`, {}, second.url)).text()).trimEnd().split('\n');
    assert.deepEqual(jsonl.map((l) => (JSON.parse(l) as { frame: number }).frame), [...Array(done.framesDone).keys()]);
  });

  it('SIGKILL of a worker: its streams move to the other within 10 s, the client keeps receiving, its job is redelivered and completes once', async (t) => {
    const { id } = await submitJob();
    const running = await waitLogged(async () => {
      const job = (await (await api(`/api/jobs/${id}`)).json()) as { state: string; worker?: string; framesDone: number };
      return job.state === 'running' && job.framesDone > 0 ? job : undefined;
    }, 120_000, 'the job to run');
    const victim = running.worker!;
    const survivor = victim === 'wa' ? 'wb' : 'wa';
    const moved = (await streams()).filter((s) => s.worker === victim).map((s) => s.id);
    assert.equal(moved.length, 2);
    const killedAt = Date.now();
    workers.get(victim)!.child.kill('SIGKILL');
    // The leases move within 10 s (lease time + a tick + the claim) ...
    await waitLogged(async () => (await health()).workers.find((w) => w.id === survivor)?.streams === 4, 10_000, `the leases of every stream on ${survivor} within 10 s`);
    const movedMs = Date.now() - killedAt;
    // ... and the streams predict again once the survivor has opened them (ffmpeg, the first frames:
    // 1-3 s on an idle machine; more when other work starves the CPU, hence the margin).
    await waitLogged(() => client.allSince(moved, killedAt + LEASE_MS), 60_000, 'predictions of the moved streams on the survivor');
    const predictingMs = Date.now() - killedAt;
    await waitLogged(async () => (await perWorker())[survivor] === 4, 30_000, `every stream live on ${survivor}`);
    t.diagnostic(`after SIGKILL: leases moved in ${movedMs} ms, moved streams predicting again after ${predictingMs} ms (load ${os.loadavg()[0].toFixed(1)})`);
    assert.ok(client.allSince(streamIds, killedAt), 'every stream kept or resumed its predictions on the same subscription');
    // The subscribers were told of the gap.
    for (const s of moved) assert.ok(client.states.some((m) => m.stream === s && m.state === 'reconnecting' && m.at >= killedAt), `a reconnecting state for ${s}`);
    const done = await jobDone(id);
    assert.equal(done.state, 'done', done.error);
    assert.equal(done.worker, survivor);
    assert.ok(done.attempts! >= 2, `attempts ${done.attempts}`);
    nc = await openCluster(readClusterSettings({ ARBEX_NATS_URL: natsUrl, ARBEX_NATS_USER: USER, ARBEX_NATS_PASSWORD: PASSWORD }), { mediaMaxBytes: 256 << 20, labelsMaxBytes: 256 << 20, jobAckWaitMs: 4000 }, 'test');
    const objects = (await nc.labels.list()).filter((o) => o.name.startsWith(`${id}/`)).map((o) => o.name).sort();
    assert.deepEqual(objects, [`${id}/labels.csv`, `${id}/labels.jsonl`], 'one output');
    const csv = (await (await api(`/api/jobs/${id}/labels.csv`)).text()).trimEnd().split('\n');
    assert.equal(csv.length - 1, done.framesDone);
    assert.match(await (await api('/metrics')).text(), /^arbex_cluster_job_redeliveries_total [1-9]\d*$/m);
  });

  it('a worker that joins takes its share', async () => {
    startWorker('wc');
    const spread = await waitLogged(async () => {
      const c = await perWorker();
      return Object.values(c).sort().join() === '2,2' && c.wc === 2 ? c : undefined;
    }, 300_000, 'two streams on the new worker');
    assert.equal(spread.wc, 2);
  });

  it('NATS killed and restarted: everyone reconnects, the streams and jobs are still there, predictions flow again', async () => {
    const jobsBefore = (await (await api('/api/jobs')).json()) as { id: string; state: string }[];
    nats.child.kill('SIGKILL');
    await nats.exited;
    await sleep(1500);
    const down = await api('/api/streams', { method: 'POST', json: { source: 'face_pan.mp4' } });
    assert.equal(down.status, 503, 'changes are refused while NATS is away');
    await startNats();
    const restartedAt = Date.now();
    await waitLogged(async () => {
      const h = await health();
      return h.connected && h.reconnects >= 1 && h.workers.length === 2 && h.unassigned === 0;
    }, 30_000, 'the gateway to reconnect and see both workers');
    const listed = await streams();
    assert.deepEqual(listed.map((s) => s.id).sort(), [...streamIds].sort());
    const jobsAfter = (await (await api('/api/jobs')).json()) as { id: string; state: string }[];
    assert.deepEqual(jobsAfter, jobsBefore.map((j) => ({ ...jobsAfter.find((a) => a.id === j.id)!, state: j.state })));
    await waitLogged(() => client.allSince(streamIds, restartedAt), 30_000, 'predictions of every stream after the restart');
  });

  it('a stopped stream stays listed, stopped, and no worker runs it; DELETE removes it', async () => {
    const id = streamIds[0]!;
    const res = await api(`/api/streams/${id}/stop`, { method: 'POST' });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { state: string }).state, 'stopped');
    await waitLogged(async () => (await health()).workers.reduce((n, w) => n + w.streams, 0) === streamIds.length - 1, 30_000, 'the worker to let it go');
    assert.equal(((await (await api(`/api/streams/${id}`)).json()) as { state: string }).state, 'stopped');
    assert.deepEqual((await health()).warnings, []);
    assert.equal((await api(`/api/streams/${id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await api(`/api/streams/${id}`)).status, 404);
    assert.deepEqual((await streams()).map((s) => s.id).sort(), streamIds.slice(1).sort());
    await waitLogged(() => client.states.some((m) => m.stream === id && m.state === 'stopped'), 10_000, 'the client to hear of the stop');
  });
});
