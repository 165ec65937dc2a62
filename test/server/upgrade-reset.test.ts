/**
 * Issue 11 item 1: a refused WebSocket upgrade (wrong path, bad token, foreign origin) whose
 * client then resets the connection must not take the process down with an uncaught ECONNRESET;
 * nor may a malformed request, reset or not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestServer } from './helpers.js';

/** Sends a raw upgrade request and resets the connection `after` it: at once, or when the answer starts. */
function upgradeThenReset(port: number, path: string, headers: string, after: 'write' | 'answer'): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.on('connect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${headers}\r\n`,
      );
      if (after === 'write') socket.resetAndDestroy();
      else socket.once('data', () => socket.resetAndDestroy());
    });
  });
}

test('refused upgrades followed by a connection reset leave the server up', async () => {
  const t = await startTestServer({ token: 'secret-token' });
  const port = Number(new URL(t.url).port);
  try {
    const cases: [string, string][] = [
      ['/nowhere', ''],
      ['/ws', 'Authorization: Bearer wrong\r\n'],
      ['/ws?token=wrong', ''],
      ['/ws', 'Authorization: Bearer secret-token\r\nOrigin: http://evil.example\r\n'],
    ];
    for (let i = 0; i < 100; i++) {
      const [path, headers] = cases[i % cases.length]!;
      await upgradeThenReset(port, path, headers, i % 2 ? 'write' : 'answer');
    }
    // And many at once, so that resets land while answers are being written.
    await Promise.all(Array.from({ length: 100 }, (_, i) => upgradeThenReset(port, cases[i % cases.length]![0], cases[i % cases.length]![1], 'write')));
    const res = await t.api('/api/health');
    assert.equal(res.status, 200);
  } finally {
    await t.close();
  }
});

/** Sends raw bytes; resolves with what came back before the connection closed. */
function raw(port: number, bytes: string, reset: boolean): Promise<string> {
  return new Promise((resolve) => {
    let answer = '';
    const socket = net.connect(port, '127.0.0.1');
    socket.on('data', (d) => (answer += d));
    socket.on('error', () => resolve(answer));
    socket.on('close', () => resolve(answer));
    socket.on('connect', () => {
      socket.write(bytes);
      if (reset) socket.resetAndDestroy();
    });
  });
}

test('malformed requests are answered 400 and closed, reset or not', async () => {
  const t = await startTestServer();
  const port = Number(new URL(t.url).port);
  try {
    const malformed = ['GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n', 'BREW /pot HTCPCP/1.0\r\n\r\n', `GET / HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`, '\u0000\u0001\u0002\r\n\r\n'];
    for (const bytes of malformed) assert.match(await raw(port, bytes, false), /^HTTP\/1\.1 4(00|31) /, JSON.stringify(bytes.slice(0, 30)));
    await Promise.all(Array.from({ length: 100 }, (_, i) => raw(port, malformed[i % malformed.length]!, true)));
    assert.equal((await t.api('/api/health')).status, 200);
  } finally {
    await t.close();
  }
});
