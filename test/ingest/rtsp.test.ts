import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openSource, parseSource, type StateEvent } from '../../src/ingest/index.js';
import type { Frame } from '../../src/pipeline/types.js';
import { sleep } from '../support/async.js';
import { facePanClip, ffmpegChildren } from '../support/ffmpeg.js';
import { FACE_PAN, isAlive, MEDIA, rtspServerAvailable, startRtspServer, tempDir, until, type RtspServer } from './helpers.js';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const skip = await rtspServerAvailable();
// The test servers listen on loopback, which network sources may reach only when told so.
const network = { allowLoopback: true };

describe('RTSP ingest', { skip }, () => {
  let dir: string;
  let clip: string;
  let server: RtspServer | undefined;

  before(async () => {
    dir = tempDir();
    clip = path.join(dir, 'clip.mp4');
    await facePanClip(clip, 20);
  });
  after(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('frames arrive; the source reconnects when the server restarts on the same port', async (t) => {
    server = await startRtspServer(clip);
    const { port, url } = server;
    const events: StateEvent[] = [];
    const src = openSource(parseSource(url, { mediaDirs: [], network }), {
      network,
      maxSide: 80,
      // The server's stop ends ffmpeg's connection, so no stall is needed to notice it; a short
      // stall timeout would only cut off first connections that are slow on a loaded machine.
      stallTimeoutMs: 10_000,
      reconnect: { initialDelayMs: 100, maxDelayMs: 400 },
      onState: (e) => events.push(e),
    });
    t.after(() => src.stop());
    const frames: Frame[] = [];
    const consumer = (async () => {
      for await (const f of src.frames()) frames.push(f);
    })();

    await until(() => frames.length >= 10, '10 frames');
    assert.ok(frames.every((f) => f.width === 80 && f.height === 60 && f.data.length === 80 * 60 * 3));
    // The server advertises the clip's range, so a duration comes through too.
    assert.deepEqual(src.info(), { codec: 'h264', width: 160, height: 120, fps: 25, durationSec: 20 });
    // ffmpeg opens the guard's relay, not `url` itself: this test's only ffmpeg.
    // (After a first connection that stalled, its ffmpeg may take a moment to exit.)
    let pidsBefore = await ffmpegChildren();
    for (const end = Date.now() + 5000; pidsBefore.length > 1 && Date.now() < end; pidsBefore = await ffmpegChildren()) await sleep(50);
    assert.equal(pidsBefore.length, 1);

    // On a loaded machine the first frame can take longer than stallTimeoutMs: the source then
    // stalls and reconnects before it goes live. So the checks below look at the events from
    // the server's stop on, not at fixed positions from the start.
    const atStop = events.length;
    const since = () => events.slice(atStop);
    await server.stop();
    server = undefined;
    await until(() => since().some((e) => e.state === 'reconnecting'), 'reconnecting after the server went away');
    const before = frames.length;
    // Let at least one attempt fail against the closed port before the server comes back.
    await until(() => since().filter((e) => e.state === 'connecting').length >= 2, 'a failed reconnect attempt');
    server = await startRtspServer(clip, port);
    await until(() => frames.length >= before + 10, '10 frames after the restart').catch((e: Error) => {
      throw new Error(`${e.message}; states: ${events.map((v) => v.state + (v.error ? ` (${v.error})` : '')).join(', ')}`);
    });

    const states = events.map((e) => e.state);
    const after = states.slice(atStop);
    const firstReconnect = after.indexOf('reconnecting');
    assert.equal(states[0], 'connecting');
    assert.ok(states.slice(0, atStop).includes('live'), `live before the stop: ${states.join(' ')}`);
    assert.ok(firstReconnect >= 0 && after.indexOf('live', firstReconnect) > firstReconnect, `live again after the restart: ${states.join(' ')}`);
    // A refused attempt reads "could not connect", like any other; the refusal is the log's detail.
    assert.ok(since().some((e) => e.state === 'reconnecting' && e.error === `could not connect to ${url}` && /connection refused/.test(e.detail ?? '')), 'a refused attempt is reported');
    for (let i = 1; i < frames.length; i++) {
      assert.ok(frames[i].index > frames[i - 1].index, `index ${frames[i].index} after ${frames[i - 1].index}`);
      assert.ok(frames[i].ptsMs >= frames[i - 1].ptsMs, `pts at ${i}`);
    }
    assert.ok(src.stats().reconnects >= 2);

    await src.stop();
    await consumer;
    assert.equal(events.at(-1)!.state, 'ended');
    assert.ok(!isAlive(pidsBefore[0]));
    assert.deepEqual(await ffmpegChildren(), []);
  });

  test('UDP transport', async (t) => {
    server ??= await startRtspServer(clip);
    const src = openSource(parseSource(server.url, { mediaDirs: [], network }), { network, maxSide: 40, rtspTransport: 'udp', fps: 5 });
    t.after(() => src.stop());
    const frames: Frame[] = [];
    for await (const f of src.frames()) {
      frames.push(f);
      if (frames.length === 3) break;
    }
    assert.ok(frames.every((f) => f.width === 40 && f.height === 30));
    // 5 fps out of 25: consecutive indices are about 5 apart.
    assert.ok(frames[2].index - frames[1].index >= 3, frames.map((f) => f.index).join(','));
    assert.deepEqual(await ffmpegChildren(), []);
  });

  test('an unreachable host fails clearly without disturbing a good source', async (t) => {
    const port = await closedPort();
    const good = openSource(parseSource(FACE_PAN, { mediaDirs: [MEDIA] }), { maxSide: 32 });
    const goodCount = (async () => {
      let n = 0;
      for await (const f of good.frames()) if (f.index === n) n++;
      return n;
    })();
    const events: StateEvent[] = [];
    const bad = openSource(parseSource(`rtsp://127.0.0.1:${port}/nothing`, { mediaDirs: [], network }), {
      network,
      reconnect: { initialDelayMs: 50, maxAttempts: 2 },
      onState: (e) => events.push(e),
    });
    t.after(() => Promise.all([good.stop(), bad.stop()]));
    await assert.rejects(
      (async () => {
        for await (const f of bad.frames()) void f;
      })(),
      new RegExp(`^Error: could not connect to rtsp://127\\.0\\.0\\.1:${port}/nothing$`),
    );
    await assert.rejects(bad.done(), /could not connect/);
    assert.ok(events.filter((e) => e.state === 'reconnecting' || e.state === 'failed').every((e) => /connection refused/.test(e.detail ?? '')));
    assert.deepEqual(
      events.map((e) => e.state),
      ['connecting', 'reconnecting', 'connecting', 'reconnecting', 'connecting', 'failed'],
    );
    assert.deepEqual(events.filter((e) => e.state === 'reconnecting').map((e) => e.delayMs), [50, 100]);
    assert.equal(await goodCount, 125);
    assert.deepEqual(await ffmpegChildren(), []);
  });
});
