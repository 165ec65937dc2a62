import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../../src/env.js';
import { chooseFfmpeg, isNewerRelease } from '../../src/ingest/ffmpeg.js';
import { ProbeError, parseProbe, probeVideo } from '../../src/ingest/probe.js';
import { FFMPEG } from '../support/ffmpeg.js';

const DEMO = path.join(ROOT, 'media', 'demo.mp4');
const dir = mkdtempSync(path.join(os.tmpdir(), 'arbex-probe-'));
after(() => rm(dir, { recursive: true, force: true }));

/** A fake `ffmpeg` on a PATH of its own that reports `version`. */
function fakeFfmpeg(version: string): string {
  const bin = mkdtempSync(path.join(dir, 'bin-'));
  writeFileSync(path.join(bin, 'ffmpeg'), `#!/bin/sh\necho "ffmpeg version ${version} Copyright (c) 2000-2024 the FFmpeg developers"\n`);
  chmodSync(path.join(bin, 'ffmpeg'), 0o755);
  return bin;
}

describe('choosing ffmpeg', () => {
  const bundled = { path: '/opt/bundled/ffmpeg', version: '20181210-g0e8eb07980' };

  it('tells releases newer than the bundled 2018 build', () => {
    for (const v of ['4.2', '4.4.2-0ubuntu0.22.04.1', '5.1.6-0+deb12u1', 'n6.1', '7.1.1-1+b1']) assert.equal(isNewerRelease(v), true, v);
    for (const v of ['4.1.3', '3.4.8', 'N-47683-g0e8eb07980-static', '20181210-g0e8eb07980', 'git-2020']) assert.equal(isNewerRelease(v), false, v);
  });

  it('prefers a newer system ffmpeg, keeps the bundled one otherwise, and FFMPEG_PATH always wins', () => {
    const newer = fakeFfmpeg('6.1.1-3ubuntu5');
    assert.deepEqual(chooseFfmpeg({ searchPath: newer, bundled }), {
      path: path.join(newer, 'ffmpeg'),
      version: '6.1.1-3ubuntu5',
      origin: 'system',
      reason: 'newer than the bundled build (20181210-g0e8eb07980)',
    });
    const older = chooseFfmpeg({ searchPath: fakeFfmpeg('4.1.3'), bundled });
    assert.equal(older.origin, 'bundled');
    assert.equal(older.path, bundled.path);
    assert.match(older.reason, /is 4\.1\.3, not a release newer/);
    assert.equal(chooseFfmpeg({ searchPath: path.join(dir, 'nowhere'), bundled }).reason, 'no ffmpeg on PATH');
    const forced = chooseFfmpeg({ override: path.join(newer, 'ffmpeg'), searchPath: '', bundled });
    assert.equal(forced.origin, 'FFMPEG_PATH');
    assert.equal(forced.version, '6.1.1-3ubuntu5');
  });
});

describe('probing a video', () => {
  it('reads container, codec, size, rate and duration', async () => {
    const p = await probeVideo(DEMO, { ffmpegPath: FFMPEG });
    assert.deepEqual(p, { container: 'mov,mp4,m4a,3gp,3g2,mj2', codec: 'h264', width: 640, height: 360, fps: 25, durationSec: 20, frames: 500 });
  });

  it('refuses a file that is not a video, naming it as asked, not by its path', async () => {
    const file = path.join(dir, 'notes.mp4');
    writeFileSync(file, 'plain text, not a video\n');
    await assert.rejects(probeVideo(file, { ffmpegPath: FFMPEG, name: 'notes.mp4' }), (e: Error) => {
      assert.ok(e instanceof ProbeError);
      assert.match(e.message, /^not a video: notes\.mp4: Invalid data found/);
      assert.doesNotMatch(e.message, new RegExp(dir));
      return true;
    });
  });

  it('refuses containers outside the whitelist (an HLS playlist naming other files)', async () => {
    const file = path.join(dir, 'list.m3u8');
    writeFileSync(file, '#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n');
    await assert.rejects(probeVideo(file, { ffmpegPath: FFMPEG }), ProbeError);
  });

  it('parses ffmpeg 4 and 5 stream lines, and says nothing without a video stream', () => {
    const v5 = 'Input #0, matroska,webm, from \'x\':\n  Duration: 00:01:02.50, start: 0.000000, bitrate: 1 kb/s\n  Stream #0:0[0x1](eng): Video: vp9 (Profile 0), yuv420p(tv), 1920x1080, SAR 1:1 DAR 16:9, 30 fps, 30 tbr, 1k tbn (default)';
    assert.deepEqual(parseProbe(v5), { container: 'matroska,webm', codec: 'vp9', width: 1920, height: 1080, fps: 30, durationSec: 62.5, frames: 1875 });
    assert.equal(parseProbe("Input #0, mp3, from 'a.mp3':\n  Duration: 00:00:03.00\n  Stream #0:0: Audio: mp3, 44100 Hz, stereo"), undefined);
  });
});
