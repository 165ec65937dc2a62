import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openSource, parseSource, type StateEvent } from '../../src/ingest/index.js';
import type { Frame } from '../../src/pipeline/types.js';
import { collect, sleep } from '../support/async.js';
import { FFMPEG, ffmpegChildren } from '../support/ffmpeg.js';
import { FACE_PAN, isAlive, MEDIA, tempDir } from './helpers.js';

const FRAMES = 125; // face_pan.mp4: 5 s at 25 fps

/** Indices strictly increase; pts strictly for files, never backwards for live (arrival time). */
function assertMonotonic(frames: Frame[], live = false): void {
  for (let i = 1; i < frames.length; i++) {
    assert.ok(frames[i].index > frames[i - 1].index, `index not increasing at ${i}`);
    const dt = frames[i].ptsMs - frames[i - 1].ptsMs;
    assert.ok(live ? dt >= 0 : dt > 0, `pts not increasing at ${i}`);
  }
}

describe('file ingest', () => {
  let dir: string;
  let mediaDirs: string[];

  before(() => {
    dir = tempDir();
    mediaDirs = [MEDIA, dir];
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('every frame of face_pan.mp4, in order, at the right size and time', async () => {
    const events: StateEvent[] = [];
    const src = openSource(parseSource('face_pan.mp4', { mediaDirs }), { maxSide: 64, onState: (e) => events.push(e) });
    const frames = await collect(src.frames());
    assert.deepEqual(frames.map((f) => f.index), Array.from({ length: FRAMES }, (_, i) => i));
    for (const f of frames) {
      // 640x480 kept at 4:3 within 64 px.
      assert.equal(f.width, 64);
      assert.equal(f.height, 48);
      assert.equal(f.data.byteLength, 64 * 48 * 3);
      assert.equal(f.data.buffer.byteLength, 64 * 48 * 3, 'each frame owns its buffer');
      assert.ok(Math.abs(f.ptsMs - f.index * 40) < 1, `frame ${f.index} at ${f.ptsMs} ms`);
    }
    assertMonotonic(frames);
    // Real pixels, not zero-filled buffers: the pan changes the picture.
    assert.ok(frames[0].data.some((v) => v > 0));
    assert.notDeepEqual(frames[0].data, frames[FRAMES - 1].data);
    assert.deepEqual(events.map((e) => e.state), ['connecting', 'live', 'ended']);
    assert.deepEqual(src.info(), { codec: 'h264', width: 640, height: 480, fps: 25, durationSec: 5 });
    assert.deepEqual(src.stats(), { framesIn: FRAMES, framesOut: FRAMES, drops: 0, reconnects: 0, state: 'ended' });
    await src.done();
  });

  test('bad options are refused before anything starts', async () => {
    const source = parseSource('face_pan.mp4', { mediaDirs });
    assert.throws(() => openSource(source, { fps: 0 }), /fps must be a positive number/);
    assert.throws(() => openSource(source, { fps: Infinity }), /fps must be a positive number/);
    assert.throws(() => openSource(source, { maxSide: 10.5 }), /maxSide must be a positive integer/);
    assert.throws(() => openSource(source, { size: { width: 0, height: 10 } }), /size needs/);
    assert.throws(() => openSource(source, { queueSize: 0 }), /queueSize must be a positive integer/);
    assert.deepEqual(await ffmpegChildren(), []);
  });

  test('exact size', async () => {
    const src = openSource(parseSource(FACE_PAN, { mediaDirs }), { size: { width: 50, height: 30 } });
    const frames = await collect(src.frames());
    assert.equal(frames.length, FRAMES);
    assert.ok(frames.every((f) => f.width === 50 && f.height === 30 && f.data.length === 50 * 30 * 3));
  });

  test('fps down-sampling keeps source frame indices', async () => {
    const src = openSource(parseSource('face_pan.mp4', { mediaDirs }), { maxSide: 32, fps: 10 });
    const frames = await collect(src.frames());
    // 5 s at 10 fps; each kept frame is the first source frame of its 100 ms slot.
    assert.equal(frames.length, 50);
    assertMonotonic(frames);
    const expected = Array.from({ length: 50 }, (_, k) => Math.ceil((k * 25) / 10));
    assert.deepEqual(frames.map((f) => f.index), expected);
    for (const f of frames) assert.ok(Math.abs(f.ptsMs - f.index * 40) < 1);
    // Same index, same picture as the full-rate decode.
    const full = await collect(openSource(parseSource('face_pan.mp4', { mediaDirs }), { maxSide: 32 }).frames());
    for (const f of frames) assert.deepEqual(f.data, full[f.index].data, `frame ${f.index}`);
  });

  test('a slow consumer on a file loses nothing, and decoding waits for it', async () => {
    const queueSize = 3;
    const src = openSource(parseSource('face_pan.mp4', { mediaDirs }), { maxSide: 64, queueSize });
    let maxAhead = 0;
    const frames = await collect(src.frames(), async (f) => {
      const s = src.stats();
      maxAhead = Math.max(maxAhead, s.framesIn - s.framesOut);
      if (f.index < 20) await sleep(25);
    });
    assert.deepEqual(frames.map((f) => f.index), Array.from({ length: FRAMES }, (_, i) => i));
    assert.equal(src.stats().drops, 0);
    // Without back-pressure ffmpeg would be ~100 frames ahead after 20 slow frames (0.5 s).
    assert.ok(maxAhead <= queueSize, `decoder ran ${maxAhead} frames ahead`);
  });

  test('a slow consumer on a live source drops the oldest frames and counts them', async () => {
    const queueSize = 2;
    const src = openSource(parseSource('face_pan.mp4', { mediaDirs }), { maxSide: 32, live: true, realtime: true, queueSize });
    const got: Frame[] = [];
    const newestAtTake: number[] = [];
    for await (const f of src.frames()) {
      got.push(f);
      newestAtTake.push(src.stats().framesIn - 1);
      if (got.length === 8) break;
      await sleep(200); // 5 source frames arrive meanwhile
    }
    const s = src.stats();
    assert.ok(s.drops >= 15, `only ${s.drops} drops`);
    assertMonotonic(got, true);
    // After each wait the consumer gets one of the newest frames: the old ones were dropped.
    for (let k = 1; k < got.length; k++) {
      assert.ok(got[k].index >= newestAtTake[k] - queueSize, `frame ${got[k].index} is stale (newest ${newestAtTake[k]})`);
    }
    // Every frame that arrived was either delivered or dropped (break stopped the source; the
    // queue is cleared then).
    assert.ok(s.framesIn - s.framesOut - s.drops <= queueSize);
    assert.equal(s.state, 'ended');
  });

  test('the ffmpegPath option is the binary that runs', async () => {
    const src = openSource(parseSource('face_pan.mp4', { mediaDirs }), { ffmpegPath: path.join(dir, 'no-ffmpeg-here') });
    await assert.rejects(src.done(), /face_pan\.mp4: ffmpeg binary not found or not executable: .*no-ffmpeg-here/);
    await src.stop();
    // A wrapper that leaves a mark, then runs the real ffmpeg.
    const marker = path.join(dir, 'wrapper-ran');
    const wrapper = path.join(dir, 'ffmpeg-wrapper.sh');
    fs.writeFileSync(wrapper, `#!/bin/sh\necho "$@" >> '${marker}'\nexec '${FFMPEG}' "$@"\n`, { mode: 0o755 });
    const frames = await collect(openSource(parseSource('face_pan.mp4', { mediaDirs }), { ffmpegPath: wrapper, maxSide: 16 }).frames());
    assert.equal(frames.length, FRAMES);
    assert.match(fs.readFileSync(marker, 'utf8'), /face_pan\.mp4.*-f rawvideo -pix_fmt rgb24 pipe:1/);
  });

  test('a missing camera device fails clearly', async () => {
    const events: StateEvent[] = [];
    const src = openSource(parseSource('/dev/video99', { mediaDirs }), { reconnect: { maxAttempts: 0 }, onState: (e) => events.push(e) });
    await assert.rejects(src.done(), /ffmpeg failed \(exit 1\) on \/dev\/video99: .*\/dev\/video99.*No such file or directory/);
    assert.deepEqual(events.map((e) => e.state), ['connecting', 'failed']);
  });

  test('stop() kills ffmpeg mid-file and leaves no process behind', async () => {
    const src = openSource(parseSource('face_pan.mp4', { mediaDirs }), { maxSide: 32, realtime: true });
    const it = src.frames();
    await it.next();
    const pids = await ffmpegChildren('face_pan.mp4');
    assert.equal(pids.length, 1, 'one ffmpeg running while the source plays');
    await src.stop();
    assert.ok(!isAlive(pids[0]), `ffmpeg ${pids[0]} still alive`);
    assert.deepEqual(await ffmpegChildren(), []);
    assert.deepEqual(await it.next(), { value: undefined, done: true });
    assert.equal(src.stats().state, 'ended');
  });

  test('broken inputs fail with a clear error while a good source keeps going', async () => {
    const truncated = path.join(dir, 'truncated.mp4');
    fs.writeFileSync(truncated, fs.readFileSync(FACE_PAN).subarray(0, 60_000));
    const text = path.join(dir, 'notes.mp4');
    fs.writeFileSync(text, 'this is a text file, not a video\n');
    const vanished = path.join(dir, 'vanished.mp4');
    fs.copyFileSync(FACE_PAN, vanished);
    const vanishedSource = parseSource(vanished, { mediaDirs });
    fs.rmSync(vanished);
    assert.throws(() => parseSource(path.join(dir, 'never-there.mp4'), { mediaDirs }), /Source file not found/);

    const good = openSource(parseSource('face_pan.mp4', { mediaDirs }), { maxSide: 32 });
    const goodFrames = collect(good.frames());
    const failures = await Promise.all(
      [parseSource(truncated, { mediaDirs }), parseSource(text, { mediaDirs }), vanishedSource].map(async (source) => {
        const events: StateEvent[] = [];
        const src = openSource(source, { maxSide: 32, onState: (e) => events.push(e) });
        const frames: Frame[] = [];
        const error = await (async () => {
          for await (const f of src.frames()) frames.push(f);
        })().then(
          () => undefined,
          (e: Error) => e,
        );
        await assert.rejects(src.done());
        return { events, error, frames };
      }),
    );
    const [trunc, txt, gone] = failures;
    assert.match(trunc.error?.message ?? '', /truncated\.mp4.*corrupt input packet|truncated\.mp4.*Invalid data/);
    assert.ok(trunc.frames.length > 0 && trunc.frames.length < FRAMES, 'the readable part of the truncated file is delivered');
    assert.match(txt.error?.message ?? '', /notes\.mp4.*(Invalid data|Format .* not on whitelist)/);
    assert.equal(txt.frames.length, 0);
    assert.match(gone.error?.message ?? '', /vanished\.mp4: No such file or directory/);
    for (const f of failures) {
      assert.deepEqual(f.events.map((e) => e.state).slice(-1), ['failed']);
      assert.equal(f.events.at(-1)!.error, f.error!.message);
    }
    assert.deepEqual((await goodFrames).map((f) => f.index), Array.from({ length: FRAMES }, (_, i) => i));
    assert.deepEqual(await ffmpegChildren(), []);
  });
});
