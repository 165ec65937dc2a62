import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseSource, SourceError } from '../../src/ingest/index.js';
import { ffmpegChildren } from '../support/ffmpeg.js';
import { tempDir } from './helpers.js';

describe('parseSource', () => {
  let root: string;
  let media: string;
  let outside: string;

  before(() => {
    root = tempDir();
    media = path.join(root, 'media');
    outside = path.join(root, 'outside');
    fs.mkdirSync(path.join(media, 'sub'), { recursive: true });
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(media, 'clip.mp4'), 'x');
    fs.writeFileSync(path.join(media, 'sub', 'inner.mp4'), 'x');
    fs.writeFileSync(path.join(outside, 'secret.mp4'), 'x');
    fs.symlinkSync(path.join(outside, 'secret.mp4'), path.join(media, 'link.mp4'));
    fs.symlinkSync(outside, path.join(media, 'linkdir'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  const opts = () => ({ mediaDirs: [media] });

  test('local files inside a media folder, relative or absolute, resolve to their real path', () => {
    const real = fs.realpathSync(path.join(media, 'clip.mp4'));
    assert.deepEqual(parseSource('clip.mp4', opts()), { kind: 'file', path: real, input: 'clip.mp4' });
    assert.equal((parseSource(path.join(media, 'clip.mp4'), opts()) as { path: string }).path, real);
    assert.equal((parseSource('sub/../sub/inner.mp4', opts()) as { path: string }).path, fs.realpathSync(path.join(media, 'sub', 'inner.mp4')));
  });

  test('network URLs and V4L2 devices', () => {
    assert.deepEqual(parseSource('rtsp://cam.local:8554/live', opts()), { kind: 'rtsp', url: 'rtsp://cam.local:8554/live', input: 'rtsp://cam.local:8554/live' });
    assert.equal(parseSource('rtsps://user:pw@cam/x', opts()).kind, 'rtsp');
    assert.equal(parseSource('https://example.com/live/index.m3u8', opts()).kind, 'http');
    // A loopback address only when the configuration allows it (policy.test.ts has the rest).
    assert.throws(() => parseSource('http://127.0.0.1:8080/mjpeg', opts()), /Source refused: 127\.0\.0\.1 is a loopback address/);
    assert.equal(parseSource('http://127.0.0.1:8080/mjpeg', { ...opts(), network: { allowLoopback: true } }).kind, 'http');
    assert.deepEqual(parseSource('/dev/video0', opts()), { kind: 'v4l2', device: '/dev/video0', input: '/dev/video0' });
  });

  test('refuses dangerous or unknown sources before any process starts', async () => {
    const cases: [string, RegExp][] = [
      [`concat:${path.join(media, 'clip.mp4')}|${path.join(outside, 'secret.mp4')}`, /Protocol "concat:" is not allowed/],
      ['subfile:,start,0,end,10,:/etc/passwd', /Protocol "subfile:" is not allowed/],
      ['pipe:0', /Protocol "pipe:" is not allowed/],
      ['data:video/mp4;base64,AAAA', /Protocol "data:" is not allowed/],
      [`file:${path.join(media, 'clip.mp4')}`, /Protocol "file:" is not allowed/],
      ['ftp://example.com/a.mp4', /Protocol "ftp:" is not allowed/],
      ['-i', /may not start with "-"/],
      ['-f lavfi -i testsrc', /may not start with "-"/],
      [path.join(outside, 'secret.mp4'), /outside the media folders/],
      ['../outside/secret.mp4', /outside the media folders/],
      [`${media}/../outside/secret.mp4`, /outside the media folders/],
      ['link.mp4', /outside the media folders/],
      ['linkdir/secret.mp4', /outside the media folders/],
      ['/etc/passwd', /outside the media folders/],
      ['missing.mp4', /Source file not found: missing\.mp4/],
      ['sub', /not a regular file/],
      ['rtsp://', /Invalid URL|no host/],
      ['', /empty/],
      [' clip.mp4', /whitespace/],
      ['clip.mp4\n-i', /control characters/],
      ['/dev/video0x', /outside the media folders|not found/],
    ];
    for (const [input, message] of cases) {
      assert.throws(() => parseSource(input, opts()), (e: unknown) => e instanceof SourceError && message.test(e.message), input);
    }
    assert.throws(() => parseSource('clip.mp4', { mediaDirs: [] }), /Local files are disabled/);
    assert.deepEqual(await ffmpegChildren(), []);
  });
});
