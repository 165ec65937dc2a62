/**
 * The WebSocket side of a real `arbex serve` under abuse, while one client watches a looped stream
 * of real predictions: 1,200 generated malformed messages and frames (ws-probes.ts), 200 abrupt
 * disconnects, a client that never reads and one that floods pings without reading. The server stays up, answers each probe with an
 * error or closes that socket with a close code, keeps feeding the watcher, forgets the clients
 * that left and keeps its memory bounded.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { seededRandom } from '../../src/model/nn/params.js';
import { FACE_PAN } from '../fixtures/media.js';
import { sleep, waitFor } from '../server/helpers.js';
import { startServe, type Serve } from './serve.js';
import { abruptDisconnect, DISCONNECT_KINDS, generateWsProbes, pingFlood, runProbe, slowReader } from './ws-probes.js';

const SEED = Number(process.env.ARBEX_FUZZ_SEED ?? 20261202);
const PROBES = 1200;
const DISCONNECTS = 200;
const CONCURRENCY = 8;
const MiB = 2 ** 20;

/** The value of one unlabelled metric from /metrics. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} in /metrics`);
  return Number(m[1]);
}

describe('malformed WebSocket traffic against arbex serve', () => {
  let serve: Serve;
  let dataDir: string;
  let mediaDir: string;
  let watcher: WebSocket;
  /** Arrival times (ms) of the watcher's predictions, and the drops it was told of. */
  const arrivals: number[] = [];
  let watcherDropped = 0;
  let rssStart = 0;
  let rssPeak = 0;
  let sampler: NodeJS.Timeout;

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'arbex-wsfuzz-data-'));
    mediaDir = mkdtempSync(path.join(os.tmpdir(), 'arbex-wsfuzz-media-'));
    copyFileSync(FACE_PAN, path.join(mediaDir, 'face_pan.mp4'));
    serve = await startServe({ dataDir, mediaDir });
    const res = await fetch(`${serve.url}/api/streams`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ source: path.join(mediaDir, 'face_pan.mp4'), name: 'watched', loop: true }),
    });
    assert.equal(res.status, 201, await res.text());
    watcher = new WebSocket(`${serve.url.replace('http', 'ws')}/ws`);
    watcher.on('message', (d) => {
      const m = JSON.parse(d.toString()) as { type: string; count?: number };
      if (m.type === 'prediction') arrivals.push(Date.now());
      if (m.type === 'dropped') watcherDropped += m.count!;
    });
    await new Promise((resolve, reject) => watcher.once('open', resolve).once('error', reject));
    watcher.send(JSON.stringify({ type: 'subscribe', stream: '*' }));
    // The model loads and the first frames go through it: slow on a loaded machine.
    await waitFor(() => arrivals.length >= 10, 180_000, 'the first predictions');
    rssStart = rssPeak = serve.rss();
    sampler = setInterval(() => (rssPeak = Math.max(rssPeak, serve.rss())), 100);
  });
  after(async () => {
    clearInterval(sampler);
    watcher?.terminate();
    serve?.child.kill('SIGKILL');
    await serve?.exited;
    await rm(dataDir, { recursive: true, force: true });
    await rm(mediaDir, { recursive: true, force: true });
  });

  /** Predictions per second the watcher got over [from, to], and the longest wait between two. */
  const fed = (from: number, to = Date.now()) => {
    const times = arrivals.filter((t) => t >= from && t <= to);
    const gaps = times.map((t, i) => t - (times[i - 1] ?? from));
    return { count: times.length, perSecond: times.length / ((to - from) / 1000), longestGapMs: Math.max(0, ...gaps, to - (times.at(-1) ?? from)) };
  };

  const assertUp = async () => {
    assert.equal(serve.child.exitCode, null, 'the server is running');
    assert.equal((await fetch(`${serve.url}/api/health`)).status, 200);
    assert.equal(watcher.readyState, WebSocket.OPEN, 'the watcher is still connected');
  };

  it(`answers ${PROBES} generated malformed messages and frames with an error or a close code`, async (ctx) => {
    const probes = generateWsProbes(PROBES, SEED);
    const from = Date.now();
    const outcomes = new Map<string, number>();
    const wrong: string[] = [];
    for (let i = 0; i < probes.length; i += CONCURRENCY) {
      for (const r of await Promise.all(probes.slice(i, i + CONCURRENCY).map((p) => runProbe(`${serve.url.replace('http', 'ws')}/ws`, p, 30_000)))) {
        outcomes.set(r.got, (outcomes.get(r.got) ?? 0) + 1);
        if (!r.ok) wrong.push(`${r.probe.kind}: expected ${JSON.stringify(r.probe.expect)}, got ${r.got}`);
      }
    }
    const watched = fed(from);
    ctx.diagnostic(`${PROBES} probes (seed ${SEED}) in ${((Date.now() - from) / 1000).toFixed(1)} s: ${[...outcomes].sort().map(([k, n]) => `${k} x${n}`).join(', ')}`);
    ctx.diagnostic(`watcher: ${watched.count} predictions meanwhile (${watched.perSecond.toFixed(1)}/s, longest gap ${watched.longestGapMs} ms); RSS ${(rssStart / MiB).toFixed(0)} MiB before, peak ${(rssPeak / MiB).toFixed(0)} MiB`);
    assert.deepEqual(wrong, []);
    await assertUp();
    assert.ok(watched.count > 0, 'the watcher kept receiving predictions');
    await waitFor(async () => (await metric(serve.url, 'arbex_ws_clients')) === 1, 30_000, 'only the watcher connected');
  });

  it(`survives ${DISCONNECTS} abrupt disconnects and forgets those clients`, async (ctx) => {
    const r = seededRandom(SEED + 1);
    const from = Date.now();
    const kinds = Array.from({ length: DISCONNECTS }, (_, i) => (i < DISCONNECT_KINDS.length ? DISCONNECT_KINDS[i]! : DISCONNECT_KINDS[Math.floor(r() * DISCONNECT_KINDS.length)]!));
    for (let i = 0; i < kinds.length; i += 10) await Promise.all(kinds.slice(i, i + 10).map((k) => abruptDisconnect(`${serve.url.replace('http', 'ws')}/ws`, k, r)));
    await waitFor(async () => (await metric(serve.url, 'arbex_ws_clients')) === 1, 30_000, 'only the watcher connected');
    const watched = fed(from);
    const counts = DISCONNECT_KINDS.map((k) => `${k} x${kinds.filter((x) => x === k).length}`).join(', ');
    ctx.diagnostic(`${DISCONNECTS} disconnects in ${((Date.now() - from) / 1000).toFixed(1)} s (${counts}); watcher: ${watched.count} predictions, longest gap ${watched.longestGapMs} ms`);
    await assertUp();
    assert.ok(watched.count > 0, 'the watcher kept receiving predictions');
  });

  it('bounds a client that never reads, and the watcher keeps up', async (ctx) => {
    const before = fed(Date.now() - 10_000);
    const slow = await slowReader(`${serve.url.replace('http', 'ws')}/ws`, 50);
    const from = Date.now();
    let peakQueue = 0;
    let peakBuffered = 0;
    let dropped = 0;
    const droppedBefore = await metric(serve.url, 'arbex_ws_frames_dropped_total');
    // Long enough for its buffers to fill and predictions to be dropped on a slow machine.
    while (Date.now() - from < 40_000) {
      await sleep(250);
      peakQueue = Math.max(peakQueue, await metric(serve.url, 'arbex_ws_queue_depth'));
      peakBuffered = Math.max(peakBuffered, await metric(serve.url, 'arbex_ws_buffered_bytes'));
      dropped = (await metric(serve.url, 'arbex_ws_frames_dropped_total')) - droppedBefore;
      if (dropped >= 50 && Date.now() - from > 20_000) break;
    }
    const written = await slow.stop();
    const during = fed(from);
    ctx.diagnostic(
      `slow reader: wrote ${(written / MiB).toFixed(1)} MiB of messages, never read; ${dropped} of its predictions dropped; queue peak ${peakQueue}, buffered peak ${(peakBuffered / 1024).toFixed(0)} KiB; ` +
        `watcher ${before.perSecond.toFixed(1)}/s before, ${during.perSecond.toFixed(1)}/s during (longest gap ${during.longestGapMs} ms, ${watcherDropped} dropped); RSS peak ${(rssPeak / MiB).toFixed(0)} MiB`,
    );
    assert.ok(dropped > 0, 'predictions for the slow reader were dropped, not queued');
    // The hub's defaults: 32 queued messages and 1 MiB in the socket per client, plus one message past it.
    assert.ok(peakQueue <= 2 * 32, `queue depth ${peakQueue}`);
    assert.ok(peakBuffered <= MiB + 256 * 1024, `buffered ${peakBuffered} bytes`);
    assert.equal(watcherDropped, 0, 'the watcher lost nothing');
    assert.ok(during.count > 0 && during.longestGapMs < 10_000, `the watcher kept receiving predictions (longest gap ${during.longestGapMs} ms)`);
    slow.client.socket.destroy();
    await waitFor(async () => (await metric(serve.url, 'arbex_ws_clients')) === 1, 30_000, 'only the watcher connected');
    await assertUp();
  });

  it('ends a connection that floods pings without reading the pongs', async (ctx) => {
    const from = Date.now();
    const flood = await pingFlood(`${serve.url.replace('http', 'ws')}/ws`);
    ctx.diagnostic(`ping flood: ended by the server: ${flood.closed}, after ${(flood.written / 1024).toFixed(0)} KiB of pings`);
    assert.ok(flood.closed, 'the server ended the connection');
    await waitFor(async () => (await metric(serve.url, 'arbex_ws_clients')) === 1, 30_000, 'only the watcher connected');
    await sleep(2000);
    assert.ok(fed(from).count > 0, 'the watcher kept receiving predictions');
    await assertUp();
  });

  it('kept its memory bounded through all of it', () => {
    assert.ok(rssPeak - rssStart < 128 * MiB, `RSS ${(rssStart / MiB).toFixed(0)} MiB at the start, peak ${(rssPeak / MiB).toFixed(0)} MiB`);
  });
});
