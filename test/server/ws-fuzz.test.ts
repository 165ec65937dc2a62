/**
 * The quick part of the WebSocket robustness probes (the bulk runs against a real `arbex serve`
 * in test/robustness/ws.robust.ts): generated malformed messages and frames, abrupt disconnects
 * and a client that never reads, against the server on the fake engine. Each malformed message is
 * answered with an error or closes that socket with a close code; a client watching a stream
 * meanwhile receives every frame, in order; nothing is left behind.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { seededRandom } from '../../src/model/nn/params.js';
import { abruptDisconnect, DISCONNECT_KINDS, generateWsProbes, pingFlood, runProbe, slowReader } from '../robustness/ws-probes.js';
import { sleep, startTestServer, waitFor } from './helpers.js';

const SEED = Number(process.env.ARBEX_FUZZ_SEED ?? 20261202);
const MAX_BUFFERED = 128 * 1024;
const MAX_QUEUE = 16;

describe('malformed WebSocket traffic (quick)', () => {
  let t: Awaited<ReturnType<typeof startTestServer>>;
  let watcher: WebSocket;
  const frames: number[] = [];
  before(async () => {
    // Frames every 5 ms with 30 faces (about 16 KB each): a client that stops reading is soon
    // behind, even when a loaded machine makes the frames come slower.
    t = await startTestServer({ fake: { intervalMs: 5, facesPerFrame: 30 }, ws: { maxBufferedBytes: MAX_BUFFERED, maxQueue: MAX_QUEUE, heartbeatMs: 60_000 } });
    const res = await t.api('/api/streams', { method: 'POST', json: { source: 'rtsp://cam/watched', name: 'watched' } });
    assert.equal(res.status, 201);
    watcher = new WebSocket(t.wsUrl);
    watcher.on('message', (d) => {
      const m = JSON.parse(d.toString()) as { type: string; frame?: number };
      if (m.type === 'prediction') frames.push(m.frame!);
    });
    await new Promise((resolve, reject) => watcher.once('open', resolve).once('error', reject));
    watcher.send(JSON.stringify({ type: 'subscribe', stream: '*' }));
    await waitFor(() => frames.length > 5, 15_000, 'first frames');
  });
  after(async () => {
    watcher.terminate();
    await t.close();
  });

  /** The watcher got frames since `from`, with no gap (it reads fast enough for none to be dropped). */
  const assertWatcherFed = async (from: number, what: string) => {
    await waitFor(() => frames.length > from + 5, 15_000, `frames for the watcher after ${what}`);
    const got = frames.slice(from);
    assert.deepEqual(got, got.map((_, i) => got[0]! + i), `the watcher received every frame in order during ${what}`);
  };

  it('answers 200 generated malformed messages and frames with an error or a close code', async () => {
    const from = frames.length;
    const probes = generateWsProbes(200, SEED);
    const wrong: string[] = [];
    for (let i = 0; i < probes.length; i += 8) {
      for (const r of await Promise.all(probes.slice(i, i + 8).map((p) => runProbe(t.wsUrl, p)))) {
        if (!r.ok) wrong.push(`${r.probe.kind}: expected ${JSON.stringify(r.probe.expect)}, got ${r.got}`);
      }
    }
    assert.deepEqual(wrong, []);
    await assertWatcherFed(from, 'the probes');
    await waitFor(() => t.server.hub.stats().clients === 1, 15_000, 'only the watcher left');
  });

  it('survives 60 abrupt disconnects and forgets those clients', async () => {
    const from = frames.length;
    const r = seededRandom(SEED + 1);
    await Promise.all(Array.from({ length: 60 }, (_, i) => abruptDisconnect(t.wsUrl, DISCONNECT_KINDS[i % DISCONNECT_KINDS.length]!, r)));
    await waitFor(() => t.server.hub.stats().clients === 1, 15_000, 'only the watcher left');
    assert.equal((await t.api('/api/health')).status, 200);
    await assertWatcherFed(from, 'the disconnects');
  });

  it('bounds a client that never reads, and the others keep up', async (ctx) => {
    const from = frames.length;
    const slow = await slowReader(t.wsUrl);
    const slowId = Math.max(...t.server.hub.clientStats().map((c) => c.id));
    let peakQueue = 0;
    let peakBuffered = 0;
    const end = Date.now() + 90_000;
    let stats = t.server.hub.clientStats().find((c) => c.id === slowId)!;
    while (Date.now() < end && stats.dropped < 100) {
      peakQueue = Math.max(peakQueue, stats.queued);
      peakBuffered = Math.max(peakBuffered, stats.bufferedAmount);
      await sleep(20);
      stats = t.server.hub.clientStats().find((c) => c.id === slowId)!;
    }
    const written = await slow.stop();
    slow.client.socket.destroy();
    ctx.diagnostic(`slow reader: wrote ${(written / 1024).toFixed(0)} KiB, ${stats.dropped} predictions dropped, queue peak ${peakQueue}, buffered peak ${(peakBuffered / 1024).toFixed(0)} KiB`);
    assert.ok(stats.dropped >= 100, `the slow client's predictions were dropped (${JSON.stringify(stats)})`);
    assert.ok(peakQueue <= MAX_QUEUE, `its queue stayed at most ${MAX_QUEUE} (${peakQueue})`);
    // One message may go out past the threshold (about 16 KB here).
    assert.ok(peakBuffered < MAX_BUFFERED + 64 * 1024, `its buffered bytes stayed bounded (${peakBuffered})`);
    await assertWatcherFed(from, 'the slow reader');
    await waitFor(() => t.server.hub.stats().clients === 1, 15_000, 'only the watcher left');
  });

  it('ends a connection that floods pings without reading the pongs', async () => {
    const from = frames.length;
    const flood = await pingFlood(t.wsUrl);
    assert.ok(flood.closed, `the server ended the connection (after ${flood.written} bytes of pings)`);
    await waitFor(() => t.server.hub.stats().clients === 1, 15_000, 'only the watcher left');
    await assertWatcherFed(from, 'the ping flood');
  });
});
