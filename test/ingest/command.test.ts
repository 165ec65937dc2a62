import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createFrameChannel } from '../../src/ingest/channel.js';
import {
  decodeCommand,
  filterChain,
  FILE_FORMATS,
  HTTP_PROTOCOLS,
  inputOptions,
  inputTarget,
  outputOptions,
  probeArgs,
  routedEnv,
  RTSP_PROTOCOLS,
  type CommandOptions,
} from '../../src/ingest/command.js';
import { reconnectDelay, resolveIngestOptions } from '../../src/ingest/options.js';
import { createStderrReader } from '../../src/ingest/stderr.js';
import { afterExit, afterStall } from '../../src/ingest/transitions.js';
import type { Source } from '../../src/ingest/source.js';

const FILE: Source = { kind: 'file', path: '/media/clip.mp4', input: 'clip.mp4' };
const RTSP: Source = { kind: 'rtsp', url: 'rtsp://cam.example/stream', input: 'rtsp://cam.example/stream' };
const HTTP: Source = { kind: 'http', url: 'https://cam.example/live.m3u8', input: 'https://cam.example/live.m3u8' };
const V4L2: Source = { kind: 'v4l2', device: '/dev/video0', input: '/dev/video0' };
const COMMON = ['-hide_banner', '-nostdin', '-nostats'];

function opts(source: Source, more: Partial<CommandOptions> = {}): CommandOptions {
  return { source, maxSide: 640, realtime: false, loop: false, strict: true, rtspTransport: 'tcp', ...more };
}

describe('ffmpeg command building', () => {
  test('file: only the file protocol and the listed demuxers, strict by default', () => {
    assert.deepEqual(inputOptions(opts(FILE)), [...COMMON, '-protocol_whitelist', 'file', '-format_whitelist', FILE_FORMATS, '-xerror']);
    assert.deepEqual(inputOptions(opts(FILE, { strict: false, realtime: true, loop: true })), [
      ...COMMON, '-protocol_whitelist', 'file', '-format_whitelist', FILE_FORMATS, '-re', '-stream_loop', '-1',
    ]);
  });

  test('the file demuxers leave out hls, concat and image2 (they open other files)', () => {
    const formats = FILE_FORMATS.split(',');
    for (const f of ['hls', 'concat', 'image2', 'applehttp']) assert.ok(!formats.includes(f), f);
    assert.ok(formats.includes('mp4') && formats.includes('matroska') && formats.includes('jpeg_pipe'));
  });

  test('a still image is opened with its one-image demuxer, named by extension', () => {
    const still = (p: string) => inputOptions(opts({ kind: 'file', path: p, input: p }, { strict: false }));
    assert.deepEqual(still('/m/face.JPG'), [...COMMON, '-protocol_whitelist', 'file', '-format_whitelist', FILE_FORMATS, '-f', 'jpeg_pipe']);
    assert.deepEqual(still('/m/face.png').slice(-2), ['-f', 'png_pipe']);
    assert.deepEqual(still('/m/face.webp').slice(-2), ['-f', 'webp_pipe']);
    assert.ok(!still('/m/clip.mkv').includes('-f'));
  });

  test('rtsp: the RTSP protocols and the chosen transport', () => {
    assert.equal(RTSP_PROTOCOLS, 'rtsp,rtsps,rtp,srtp,udp,tcp,tls,httpproxy');
    assert.deepEqual(inputOptions(opts(RTSP)), [...COMMON, '-protocol_whitelist', RTSP_PROTOCOLS, '-rtsp_transport', 'tcp']);
    assert.deepEqual(inputOptions(opts(RTSP, { rtspTransport: 'udp' })).slice(-2), ['-rtsp_transport', 'udp']);
  });

  test('http: network protocols only (no file, so a playlist cannot name local files), and no file options', () => {
    assert.equal(HTTP_PROTOCOLS, 'http,https,tls,tcp,crypto,httpproxy');
    assert.ok(!HTTP_PROTOCOLS.split(',').includes('file'));
    assert.deepEqual(inputOptions(opts(HTTP, { loop: true, realtime: true })), [...COMMON, '-protocol_whitelist', HTTP_PROTOCOLS]);
  });

  test('v4l2: the v4l2 demuxer', () => {
    assert.deepEqual(inputOptions(opts(V4L2)), [...COMMON, '-f', 'v4l2']);
  });

  test('the input is the path, URL or device, or the guard route when there is one', () => {
    assert.equal(inputTarget(FILE), '/media/clip.mp4');
    assert.equal(inputTarget(RTSP), 'rtsp://cam.example/stream');
    assert.equal(inputTarget(HTTP), 'https://cam.example/live.m3u8');
    assert.equal(inputTarget(V4L2), '/dev/video0');
    assert.equal(inputTarget(RTSP, { target: 'rtsp://127.0.0.1:9000/stream', httpProxy: 'http://127.0.0.1:9001' }), 'rtsp://127.0.0.1:9000/stream');
  });

  test('filter chain: showinfo first and last, scale within maxSide or exact, select for fps', () => {
    assert.deepEqual(filterChain({ maxSide: 320 }), {
      chain: "showinfo,scale='min(320,iw)':'min(320,ih)':force_original_aspect_ratio=decrease,format=rgb24,showinfo",
      lastShowinfo: 3,
    });
    assert.deepEqual(filterChain({ maxSide: 320, size: { width: 64, height: 48 }, fps: 5 }), {
      chain: "showinfo,select='isnan(prev_selected_t)+gt(floor(t*5),floor(prev_selected_t*5))',scale=64:48,format=rgb24,showinfo",
      lastShowinfo: 4,
    });
  });

  test('output: first video stream only, raw RGB, timestamps passed through', () => {
    assert.deepEqual(outputOptions('CHAIN'), ['-map', '0:v:0', '-an', '-sn', '-dn', '-vf', 'CHAIN', '-vsync', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24']);
  });

  test('decodeCommand puts the parts together', () => {
    const route = { target: 'http://10.0.0.5/live.m3u8', httpProxy: 'http://127.0.0.1:4000' };
    const cmd = decodeCommand(opts(HTTP, { route, maxSide: 100 }));
    assert.equal(cmd.input, route.target);
    assert.deepEqual(cmd.inputOptions, inputOptions(opts(HTTP)));
    assert.deepEqual(cmd.outputOptions, outputOptions(filterChain({ maxSide: 100 }).chain));
    assert.equal(cmd.lastShowinfo, 3);
  });

  test('a routed decode has the guard proxy and no no_proxy in its environment', () => {
    const env = routedEnv({ target: 'x', httpProxy: 'http://127.0.0.1:4000' }, { PATH: '/bin', no_proxy: '*', http_proxy: 'http://other' });
    assert.deepEqual(env, { PATH: '/bin', http_proxy: 'http://127.0.0.1:4000' });
  });

  test('probe: ffmpeg -i under the same file limits as decoding', () => {
    assert.deepEqual(probeArgs('/m/a.mp4'), ['-hide_banner', '-nostdin', '-protocol_whitelist', 'file', '-format_whitelist', FILE_FORMATS, '-i', '/m/a.mp4']);
  });
});

describe('decode stderr reader', () => {
  test('source info with duration, and output frames matched to their source index by pts', () => {
    const r = createStderrReader(3);
    assert.deepEqual(r.read('  Duration: 00:01:02.50, start: 0.000000, bitrate: 100 kb/s'), {});
    const { info } = r.read('    Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 640x480, 25 fps, 25 tbr');
    assert.deepEqual(info, { codec: 'h264', width: 640, height: 480, fps: 25, durationSec: 62.5 });
    r.read('[Parsed_showinfo_0 @ 0x55] config in time_base: 1/25, frame_rate: 25/1');
    for (const n of [0, 1, 2]) r.read(`[Parsed_showinfo_0 @ 0x55] n:   ${n} pts:   ${n} pts_time:${n / 25} s:640x480`);
    // select kept frame 2 only: frames 0 and 1 are skipped over.
    assert.deepEqual(r.read('[Parsed_showinfo_3 @ 0x56] n:   0 pts:   2 pts_time:0.08 s:160x120'), { frame: { n: 2, pts: 2, width: 160, height: 120 } });
    assert.equal(r.timeBase(), 1 / 25);
  });

  test('diagnosis keeps the last two useful lines without addresses', () => {
    const r = createStderrReader(3);
    for (const l of ['Input #0, rtsp, from x', '[rtsp @ 0x1234ab] method DESCRIBE failed: 404 Not Found', 'rtsp://x: Server returned 404 Not Found', 'Conversion failed!']) r.read(l);
    assert.equal(r.diagnosis(), '[rtsp] method DESCRIBE failed: 404 Not Found; rtsp://x: Server returned 404 Not Found');
  });
});

describe('ingest rules', () => {
  test('defaults: live for all but files, and bad options refused', () => {
    assert.equal(resolveIngestOptions(FILE, { ffmpegPath: 'ff' }).o.live, false);
    assert.equal(resolveIngestOptions(RTSP, { ffmpegPath: 'ff' }).o.live, true);
    assert.equal(resolveIngestOptions(RTSP, { ffmpegPath: 'ff', maxSide: undefined }).o.maxSide, 640);
    assert.throws(() => resolveIngestOptions(FILE, { ffmpegPath: 'ff', queueSize: 0 }), /queueSize/);
    assert.throws(() => resolveIngestOptions(FILE, { ffmpegPath: 'ff', fps: -1 }), /fps/);
    assert.throws(() => resolveIngestOptions(FILE, { ffmpegPath: 'ff', size: { width: 1.5, height: 2 } }), /size/);
  });

  test('reconnect delay doubles from the initial delay up to the cap', () => {
    const b = { initialDelayMs: 500, maxDelayMs: 3000, factor: 2, maxAttempts: Infinity };
    assert.deepEqual([1, 2, 3, 4, 5].map((a) => reconnectDelay(a, b)), [500, 1000, 2000, 3000, 3000]);
  });

  const base = { guarded: false, hadFrames: true, framesIn: 10, unreachable: 'could not connect to x', input: 'x' };
  test('after an exit: files end or fail, live sources reconnect, refusals fail, unreachable is uniform', () => {
    assert.deepEqual(afterExit({ ...base, live: false }), { to: 'ended' });
    assert.match((afterExit({ ...base, live: false, framesIn: 0 }) as { error: Error }).error.message, /no video frames/);
    const live = afterExit({ ...base, live: true });
    assert.equal(live.to, 'reconnecting');
    assert.equal((live as { error: Error }).error.message, 'stream ended');
    const refused = afterExit({ ...base, live: true, guarded: true, outcome: { refusal: 'refused 10.0.0.1' } });
    assert.equal(refused.to, 'failed');
    const never = afterExit({ ...base, live: true, guarded: true, hadFrames: false, outcome: { failure: 'ECONNREFUSED' } });
    assert.deepEqual([never.to, (never as { error: Error }).error.message, (never as { detail?: string }).detail], ['reconnecting', 'could not connect to x', 'ECONNREFUSED']);
  });

  test('after a stall: reconnect, or fail on a refusal; a guarded source that never gave a frame is unreachable', () => {
    const s = afterStall({ stallTimeoutMs: 5000, guarded: false, hadFrames: true, unreachable: 'u' });
    assert.deepEqual(s.stalled, { error: 'no frame for 5000 ms' });
    assert.equal(s.next.to, 'reconnecting');
    const never = afterStall({ stallTimeoutMs: 5000, guarded: true, hadFrames: false, unreachable: 'u' });
    assert.deepEqual(never.stalled, { error: 'u', detail: 'no frame for 5000 ms' });
    assert.equal(afterStall({ stallTimeoutMs: 1, guarded: true, hadFrames: false, refusal: 'no', unreachable: 'u' }).next.to, 'failed');
  });

  test('frame channel: files pause at queueSize and resume; live drops the oldest', async () => {
    const calls: string[] = [];
    const counters = { framesIn: 0, framesOut: 0, drops: 0 };
    const file = createFrameChannel<number>({ live: false, queueSize: 2, counters, pause: () => calls.push('pause'), resume: () => calls.push('resume') });
    file.push(1);
    file.push(2);
    assert.deepEqual(calls, ['pause']);
    assert.deepEqual(await file.next(), { value: 1, done: false });
    assert.deepEqual(calls, ['pause', 'resume']);
    const liveCounters = { framesIn: 0, framesOut: 0, drops: 0 };
    const live = createFrameChannel<number>({ live: true, queueSize: 2, counters: liveCounters, pause() {}, resume() {} });
    for (const n of [1, 2, 3, 4]) live.push(n);
    assert.equal(liveCounters.drops, 2);
    assert.deepEqual(await live.next(), { value: 3, done: false });
    live.close(new Error('gone'));
    assert.deepEqual(await live.next(), { value: 4, done: false });
    await assert.rejects(live.next(), /gone/);
    assert.deepEqual(await live.next(), { value: undefined, done: true });
  });
});
