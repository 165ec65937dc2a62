/**
 * Issue 11 item 4 (SSRF): network sources may not reach loopback, link-local, metadata or
 * unspecified addresses unless told so, checked after DNS resolution and on every hop (HTTP
 * redirects, HLS segments, RTSP redirects), and failures to connect all read "could not connect".
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createAddressPolicy, openSource, parseSource, SourceError, type StateEvent } from '../../src/ingest/index.js';
import { FACE_PAN, listen, tempDir } from './helpers.js';


const close = (server: net.Server) => new Promise<void>((r) => server.close(() => r()));

/** Opens `input` (not live, one attempt) and resolves with the error it fails with and its events. */
async function failure(input: string, network: Parameters<typeof createAddressPolicy>[0] = {}): Promise<{ error: Error; events: StateEvent[] }> {
  const events: StateEvent[] = [];
  const src = openSource(parseSource(input, { mediaDirs: [], network }), { network, live: false, maxSide: 32, onState: (e) => events.push(e) });
  try {
    for await (const f of src.frames()) void f;
  } catch (e) {
    return { error: e as Error, events };
  } finally {
    await src.stop();
  }
  throw new Error(`${input} did not fail`);
}

describe('address policy', () => {
  test('denies loopback, link-local, metadata and unspecified addresses; allows LAN and public ones', () => {
    const policy = createAddressPolicy();
    const denied: [string, RegExp][] = [
      ['127.0.0.1', /loopback/],
      ['127.8.9.10', /loopback/],
      ['::1', /loopback/],
      ['::ffff:127.0.0.1', /loopback/],
      ['169.254.169.254', /cloud metadata/],
      ['fd00:ec2::254', /cloud metadata/],
      ['100.100.100.200', /cloud metadata/],
      ['169.254.1.1', /link-local/],
      ['fe80::1', /link-local/],
      ['0.0.0.0', /unspecified/],
      ['::', /unspecified/],
      ['224.0.0.1', /multicast/],
    ];
    for (const [address, why] of denied) assert.match(policy.refusal(address) ?? '', why, address);
    for (const address of ['10.0.0.5', '172.16.3.4', '192.168.1.20', 'fd12:3456::1', '8.8.8.8', '2001:4860:4860::8888']) {
      assert.equal(policy.refusal(address), undefined, address);
    }
  });

  test('allowLoopback lifts loopback only; allow lifts a range; deny wins', () => {
    const loop = createAddressPolicy({ allowLoopback: true });
    assert.equal(loop.refusal('127.0.0.1'), undefined);
    assert.equal(loop.refusal('::1'), undefined);
    assert.match(loop.refusal('169.254.169.254') ?? '', /metadata/);
    const lan = createAddressPolicy({ allow: ['169.254.10.0/24'], deny: ['192.168.1.1', '10.0.0.0/8'] });
    assert.equal(lan.refusal('169.254.10.20'), undefined);
    assert.match(lan.refusal('169.254.11.20') ?? '', /link-local/);
    assert.match(lan.refusal('192.168.1.1') ?? '', /ARBEX_SOURCE_DENY/);
    assert.match(lan.refusal('10.9.9.9') ?? '', /ARBEX_SOURCE_DENY/);
    assert.equal(lan.refusal('192.168.1.2'), undefined);
    assert.throws(() => createAddressPolicy({ allow: ['10.0.0.0/33'] }), /ARBEX_SOURCE_ALLOW: "10.0.0.0\/33" is not/);
    assert.throws(() => createAddressPolicy({ deny: ['cam.local'] }), /ARBEX_SOURCE_DENY/);
  });

  test('host names are checked after resolution, on every address', async () => {
    await assert.rejects(createAddressPolicy().resolve('localhost'), (e: Error) => e instanceof SourceError && /localhost resolves to (127\.0\.0\.1|::1), a loopback address/.test(e.message));
    assert.match(await createAddressPolicy({ allowLoopback: true }).resolve('localhost'), /^(127\.0\.0\.1|::1)$/);
    await assert.rejects(createAddressPolicy().resolve('[::1]'), /::1 is a loopback address/);
  });

  test('parseSource refuses an address literal that may not be reached, in any spelling', () => {
    for (const input of ['http://127.0.0.1:8080/x.mjpeg', 'http://2130706433/', 'http://0x7f.1/', 'https://[::1]/', 'rtsp://169.254.169.254/latest', 'http://0.0.0.0:22/', 'rtsp://[::ffff:127.0.0.1]/cam']) {
      assert.throws(() => parseSource(input, { mediaDirs: [] }), (e: Error) => e instanceof SourceError && /^Source refused: .* is a /.test(e.message), input);
    }
    assert.equal(parseSource('http://127.0.0.1:8080/x.mjpeg', { mediaDirs: [], network: { allowLoopback: true } }).kind, 'http');
    assert.equal(parseSource('rtsp://192.168.1.20/stream', { mediaDirs: [] }).kind, 'rtsp');
    // Not an address for the URL parser, but one for the system resolver: caught when connecting.
    assert.equal(parseSource('rtsp://0x7f.1/cam', { mediaDirs: [] }).kind, 'rtsp');
  });
});

describe('network sources through the guard', () => {
  let dir: string;
  // The "inside" service an attacker wants to reach, on 127.0.0.1; it records every request.
  let secret: http.Server;
  let secretPort: number;
  const secretHits: string[] = [];
  // A "camera" on 127.0.0.2, allowed by an explicit `allow`; it redirects where it is told.
  let camera: http.Server;
  let cameraPort: number;
  // A fake RTSP server on 127.0.0.2 that answers with what the test sets.
  let rtsp: net.Server;
  let rtspPort: number;
  let rtspAnswer: (socket: net.Socket) => void = () => undefined;
  const allowCamera = { allow: ['127.0.0.2'] };

  before(async () => {
    dir = tempDir();
    fs.copyFileSync(FACE_PAN, path.join(dir, 'face_pan.mp4'));
    secret = http.createServer((req, res) => {
      secretHits.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'video/mp4' });
      fs.createReadStream(path.join(dir, 'face_pan.mp4')).pipe(res);
    });
    secretPort = await listen(secret);
    camera = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://camera');
      if (url.pathname === '/redirect') return res.writeHead(302, { location: url.searchParams.get('to')! }).end();
      if (url.pathname === '/playlist.m3u8') {
        res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl' });
        return res.end(`#EXTM3U\n#EXT-X-TARGETDURATION:5\n#EXTINF:5.0,\nhttp://127.0.0.1:${secretPort}/segment.ts\n#EXT-X-ENDLIST\n`);
      }
      if (url.pathname === '/clip.mp4') {
        res.writeHead(200, { 'content-type': 'video/mp4' });
        return fs.createReadStream(path.join(dir, 'face_pan.mp4')).pipe(res);
      }
      res.writeHead(404).end();
    });
    cameraPort = await listen(camera, '127.0.0.2');
    rtsp = net.createServer((s) => {
      s.on('error', () => s.destroy());
      s.once('data', () => rtspAnswer(s));
    });
    rtspPort = await listen(rtsp, '127.0.0.2');
  });
  after(async () => {
    await Promise.all([close(secret), close(camera), close(rtsp)]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('an allowed camera is read through the guard', async () => {
    const src = openSource(parseSource(`http://127.0.0.2:${cameraPort}/clip.mp4`, { mediaDirs: [], network: allowCamera }), { network: allowCamera, live: false, maxSide: 32 });
    let n = 0;
    for await (const f of src.frames()) if (f.index === n) n++;
    assert.equal(n, 125);
  });

  test('a host name that resolves to loopback is refused by default, and nothing is fetched', async () => {
    secretHits.length = 0;
    const { error, events } = await failure(`http://localhost:${secretPort}/latest/meta-data`);
    assert.ok(error instanceof SourceError, String(error));
    assert.match(error.message, /^Source refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
    assert.equal(events.at(-1)?.state, 'failed');
    assert.deepEqual(secretHits, []);
  });

  test('an HTTP redirect to a denied address is refused, not followed', async () => {
    secretHits.length = 0;
    const to = `http://127.0.0.1:${secretPort}/admin`;
    const { error } = await failure(`http://127.0.0.2:${cameraPort}/redirect?to=${encodeURIComponent(to)}`, allowCamera);
    assert.match(error.message, /^Source refused: 127\.0\.0\.1 is a loopback address/);
    assert.deepEqual(secretHits, []);
  });

  test('HLS segments on a denied address are not fetched', async () => {
    secretHits.length = 0;
    const { error } = await failure(`http://127.0.0.2:${cameraPort}/playlist.m3u8`, allowCamera);
    assert.match(error.message, /^Source refused: 127\.0\.0\.1 is a loopback address/);
    assert.deepEqual(secretHits, []);
  });

  test('an RTSP redirect is refused, however the server dresses it up', async () => {
    const location = `Location: rtsp://127.0.0.1:${secretPort}/cam`;
    const answers: Buffer[][] = [
      [Buffer.from(`RTSP/1.0 302 Moved Temporarily\r\nCSeq: 1\r\n${location}\r\n\r\n`)],
      // Split inside the status line, bare "\n" line ends, a "\r" inside the status code.
      [Buffer.from('RTSP/1.0 3'), Buffer.from(`\r02 Moved\nCSeq: 1\n${location}\n\n`)],
      // Behind an interleaved packet and a harmless answer with a body.
      [Buffer.concat([Buffer.from([0x24, 0, 0, 3]), Buffer.from('abc'), Buffer.from(`RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 4\r\n\r\n1234RTSP/1.0 301 Moved\r\nCSeq: 1\r\n${location}\r\n\r\n`)])],
    ];
    for (const parts of answers) {
      secretHits.length = 0;
      rtspAnswer = (s) => {
        let delay = 0;
        for (const part of parts) setTimeout(() => s.write(part), (delay += 50));
      };
      const { error } = await failure(`rtsp://127.0.0.2:${rtspPort}/cam`, allowCamera);
      assert.match(error.message, /^Source refused: the RTSP server answered with a redirect/, JSON.stringify(parts.map(String)));
      assert.deepEqual(secretHits, []);
    }
  });

  test('a closed port, a port that speaks something else and an HTTP error all read "could not connect"', async () => {
    const closedServer = net.createServer();
    const closed = await listen(closedServer);
    await close(closedServer);
    // Reads what it is sent (so that it sees the client close) and answers with an SSH banner.
    const banner = net.createServer((s) => s.resume().end('SSH-2.0-OpenSSH_9.2\r\n'));
    const bannerPort = await listen(banner);
    try {
      const details: string[] = [];
      const urls = [
        `http://127.0.0.1:${closed}/x`,
        `http://127.0.0.1:${bannerPort}/x`,
        `http://127.0.0.2:${cameraPort}/nothing.mp4`,
        `rtsp://127.0.0.1:${closed}/x`,
        `rtsp://127.0.0.1:${bannerPort}/x`,
      ];
      for (const url of urls) {
        const { error, events } = await failure(url, { allowLoopback: true });
        assert.equal(error.message, `could not connect to ${url}`);
        details.push(events.find((e) => e.state === 'failed')?.detail ?? '');
      }
      // What really happened is still there, for the logs.
      assert.match(details[0]!, /connection refused/);
      assert.match(details[3]!, /connection refused/);
    } finally {
      await close(banner);
    }
  });
});
