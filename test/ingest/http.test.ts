import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { openSource, parseSource, type StateEvent } from '../../src/ingest/index.js';
import type { Frame } from '../../src/pipeline/types.js';
import { collect, sleep } from '../support/async.js';
import { FFMPEG, ffmpegChildren } from '../support/ffmpeg.js';
import { FACE_PAN, isAlive, listen, tempDir, until } from './helpers.js';

const run = promisify(execFile);

const TYPES: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.ts': 'video/mp2t',
  '.mjpeg': 'multipart/x-mixed-replace;boundary=ffmpeg',
};


const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

// The test servers listen on loopback, which network sources may reach only when told so.
const network = { allowLoopback: true };

describe('HTTP ingest', () => {
  let dir: string;
  let base: string;
  let server: http.Server;
  // Accepts connections and never answers: a stream that stalls.
  let silent: net.Server;
  let silentUrl: string;
  const sockets = new Set<net.Socket>();

  before(async () => {
    dir = tempDir();
    fs.copyFileSync(FACE_PAN, path.join(dir, 'face_pan.mp4'));
    const ff = (...args: string[]) => run(FFMPEG, ['-y', '-hide_banner', '-loglevel', 'error', '-nostdin', '-i', FACE_PAN, '-t', '2', '-vf', 'scale=80:60', ...args]);
    await Promise.all([
      ff('-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-f', 'hls', '-hls_time', '1', '-hls_list_size', '0', '-hls_playlist_type', 'vod', path.join(dir, 'index.m3u8')),
      ff('-q:v', '5', '-f', 'mpjpeg', path.join(dir, 'cam.mjpeg')),
    ]);
    server = http.createServer((req, res) => {
      const file = path.join(dir, path.basename(req.url ?? ''));
      if (!fs.existsSync(file)) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
      fs.createReadStream(file).pipe(res);
    });
    base = `http://127.0.0.1:${await listen(server)}`;
    silent = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    silentUrl = `http://127.0.0.1:${await listen(silent)}/stream.mjpeg`;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => silent.close(r))]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('progressive MP4 read as a file: every frame, exact indices', async () => {
    const frames = await collect(openSource(parseSource(`${base}/face_pan.mp4`, { mediaDirs: [], network }), { network, live: false, maxSide: 32 }).frames());
    assert.deepEqual(frames.map((f) => f.index), range(125));
    assert.ok(frames.every((f) => f.width === 32 && f.height === 24));
  });

  test('HLS playlist', async () => {
    const frames = await collect(openSource(parseSource(`${base}/index.m3u8`, { mediaDirs: [], network }), { network, live: false }).frames());
    assert.deepEqual(frames.map((f) => f.index), range(50));
    assert.ok(frames.every((f) => f.width === 80 && f.height === 60 && f.data.length === 80 * 60 * 3));
  });

  test('MJPEG stream: live frames, then a reconnect when the stream ends', async (t) => {
    const events: StateEvent[] = [];
    const src = openSource(parseSource(`${base}/cam.mjpeg`, { mediaDirs: [], network }), {
      network,
      reconnect: { initialDelayMs: 50 },
      onState: (e) => events.push(e),
    });
    t.after(() => src.stop());
    const frames: Frame[] = [];
    const consumer = (async () => {
      for await (const f of src.frames()) frames.push(f);
    })();
    await until(() => events.filter((e) => e.state === 'live').length >= 2, 'live again after the stream ended');
    assert.deepEqual(events.slice(0, 5).map((e) => e.state), ['connecting', 'live', 'reconnecting', 'connecting', 'live']);
    assert.equal(events[2].error, 'stream ended');
    assert.ok(frames.length > 0 && frames.every((f) => f.width === 80 && f.height === 60));
    for (let i = 1; i < frames.length; i++) assert.ok(frames[i].index > frames[i - 1].index);
    await src.stop();
    await consumer;
  });

  test('a stream that never sends a frame stalls, is retried, then fails', async (t) => {
    const events: StateEvent[] = [];
    const src = openSource(parseSource(silentUrl, { mediaDirs: [], network }), {
      network,
      stallTimeoutMs: 300,
      reconnect: { initialDelayMs: 20, maxAttempts: 1 },
      onState: (e) => events.push(e),
    });
    t.after(() => src.stop());
    // Never a frame: the same "could not connect" as a closed port; the stall is the log's detail.
    await assert.rejects(src.done(), new RegExp(`^Error: could not connect to ${silentUrl.replace(/[.?]/g, '\\$&')}$`));
    assert.deepEqual(events.map((e) => e.state), ['connecting', 'stalled', 'reconnecting', 'connecting', 'stalled', 'failed']);
    assert.ok(events.filter((e) => e.state !== 'connecting').every((e) => e.detail === 'no frame for 300 ms'));
    await sleep(50);
    assert.deepEqual(await ffmpegChildren(), []);
  });

  test('no ffmpeg outlives its process, even without stop()', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'fixtures', 'exit_child.ts'), silentUrl], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 0);
    const pid = Number(/PID (\d+)/.exec(out)?.[1]);
    assert.ok(pid > 0, `child said: ${out}`);
    // The silent server keeps ffmpeg waiting, so only the exit hook can have ended it.
    await until(() => !isAlive(pid), `ffmpeg ${pid} to be gone`, 2000);
  });
});
