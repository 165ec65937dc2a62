/**
 * Generated malformed WebSocket traffic for `/ws`, and a raw client to send it with.
 *
 * Every probe says what a correct server does with it:
 * - `reply`: answers on the same socket with `{type:'error', error}` (this `error`) and stays open;
 * - `close`: closes that socket with a close frame carrying one of `codes` (1002 protocol error,
 *   1007 invalid UTF-8, 1009 too big, or the client's own valid code echoed back);
 * - `quiet`: nothing (a legal ping or pong), the socket stays open.
 *
 * Probes are raw bytes written after a real handshake, so that anything the protocol allows (and
 * much it does not) can be sent: frames are built here, masked as a client's must be unless the
 * probe is about an unmasked frame. Seeded with the project's generator, so a failure replays.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { seededRandom } from '../../src/model/nn/params.js';

export type Expect = { kind: 'reply'; error: string } | { kind: 'close'; codes: number[] } | { kind: 'quiet' };

export interface WsProbe {
  kind: string;
  /** Bytes to write once the handshake is done (one or more frames, possibly broken). */
  bytes: Buffer;
  expect: Expect;
}

export const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  fin?: boolean;
  /** RSV1-3 bits (0-7). */
  rsv?: number;
  /** Clients must mask; false sends the payload in the clear. */
  mask?: boolean;
  /** Declared length instead of the payload's (the payload is then cut or sent as is). */
  declaredLength?: bigint;
}

/** One WebSocket frame as RFC 6455 lays it out. */
export function frame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0));
  const { opcode, fin = true, rsv = 0, mask = true } = spec;
  const length = spec.declaredLength ?? BigInt(payload.length);
  const head: number[] = [(fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0xf)];
  const maskBit = mask ? 0x80 : 0;
  let ext = Buffer.alloc(0);
  if (length < 126n) head.push(maskBit | Number(length));
  else if (length < 65536n) {
    head.push(maskBit | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(Number(length));
  } else {
    head.push(maskBit | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(length);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), ext, payload]);
  const key = randomBytes(4);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= key[i & 3]!;
  return Buffer.concat([Buffer.from(head), ext, key, masked]);
}

const closePayload = (code: number, reason: Buffer | string = '') => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, typeof reason === 'string' ? Buffer.from(reason) : reason]);
};

/** Close codes a client may send (RFC 6455 7.4, as ws checks them). */
const VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999];
const INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535];

/**
 * @example
 * for (const p of generateWsProbes(1000, 7)) await sendProbe(wsUrl, p);
 */
export function generateWsProbes(count: number, seed = 1, maxPayload = 64 * 1024): WsProbe[] {
  const r = seededRandom(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const text = (n: number) => Array.from({ length: n }, () => pick('abcdefghijklmnopqrstuvwxyz0123456789 "{}[],:\\'.split(''))).join('');
  const txt = (payload: string | Buffer, fin = true) => frame({ opcode: OP.text, payload, fin });
  const reply = (error: string): Expect => ({ kind: 'reply', error });
  const close = (...codes: number[]): Expect => ({ kind: 'close', codes });
  const wrongValues: unknown[] = [null, true, false, 0, -1, 1e308, 'x', '', [], {}, [1, 2], { a: 1 }, '\u202e', '\u0000'];
  const invalidUtf8 = [Buffer.from([0xc3, 0x28]), Buffer.from([0xff]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), Buffer.from([0xe2, 0x82])];
  const nested = (depth: number, open: string, close: string) => open.repeat(depth) + close.repeat(depth);

  const cases: (() => Omit<WsProbe, 'kind'> & { kind: string })[] = [
    // Not JSON: random bytes made valid UTF-8, truncated objects, stray text.
    () => ({ kind: 'text: not JSON', bytes: txt(`{${text(1 + int(300))}`), expect: reply('bad message') }),
    () => {
      const s = JSON.stringify({ type: 'subscribe', stream: text(10) });
      return { kind: 'text: truncated JSON', bytes: txt(s.slice(0, 1 + int(s.length - 2))), expect: reply('bad message') };
    },
    () => ({ kind: 'text: empty', bytes: txt(''), expect: reply('bad message') }),
    // JSON of the wrong shape.
    () => ({ kind: 'text: not an object', bytes: txt(JSON.stringify(pick(wrongValues))), expect: reply('bad message') }),
    () => ({ kind: 'text: wrong type of type', bytes: txt(JSON.stringify({ type: pick(wrongValues.filter((v) => typeof v !== 'string')), stream: '*' })), expect: reply('bad message') }),
    () => ({ kind: 'text: wrong type of stream', bytes: txt(JSON.stringify({ type: pick(['subscribe', 'unsubscribe']), stream: pick(wrongValues.filter((v) => typeof v !== 'string' || v === '')) })), expect: reply('bad message') }),
    () => ({ kind: 'text: missing stream', bytes: txt(JSON.stringify({ type: pick(['subscribe', 'unsubscribe']) })), expect: reply('bad message') }),
    () => ({ kind: 'text: extra keys', bytes: txt(JSON.stringify({ type: pick(['subscribe', 'ping']), stream: '*', [text(5)]: text(5) })), expect: reply('bad message') }),
    () => ({ kind: 'text: __proto__', bytes: txt(`{"type":"subscribe","stream":"*","__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}`), expect: reply('bad message') }),
    // Unknown operations, some of them long.
    () => ({ kind: 'text: unknown type', bytes: txt(JSON.stringify({ type: pick(['dance', 'SUBSCRIBE', 'subscribe ', 'eval', '__proto__', 'constructor', text(1 + int(40)), 'x'.repeat(1000 + int(30_000))]) })), expect: reply('unknown type') }),
    () => ({ kind: 'text: unknown stream', bytes: txt(JSON.stringify({ type: 'subscribe', stream: pick(['no-such-stream', '../etc/passwd', '\u0000', '**', text(1 + int(40)), 'y'.repeat(1000 + int(30_000))]) })), expect: reply('unknown stream') }),
    // Deep nesting inside the size limit: as the value, as the whole message, as objects.
    () => ({ kind: 'text: nested arrays', bytes: txt(nested(1000 + int(30_000), '[', ']')), expect: reply('bad message') }),
    () => ({ kind: 'text: nested stream value', bytes: txt(`{"type":"subscribe","stream":${nested(1000 + int(20_000), '[', ']')}}`), expect: reply('bad message') }),
    () => {
      const depth = 1000 + int(6000);
      return { kind: 'text: nested objects', bytes: txt(`{"type":"ping","x":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`), expect: reply('bad message') };
    },
    () => ({ kind: 'text: unbalanced nesting', bytes: txt('['.repeat(1000 + int(50_000))), expect: reply('bad message') }),
    // Over the limit: one frame, or fragments that add up to more.
    () => ({ kind: 'text: over the size limit', bytes: txt(JSON.stringify({ type: 'ping', pad: 'z'.repeat(maxPayload + int(200_000)) })), expect: close(1009) }),
    () => ({ kind: 'binary: over the size limit', bytes: frame({ opcode: OP.binary, payload: bytes(maxPayload + 1 + int(1000)) }), expect: close(1009) }),
    () => {
      const piece = Buffer.alloc(16 * 1024 + int(16 * 1024), 'a');
      const n = Math.ceil((maxPayload + 1) / piece.length) + int(3);
      const frames = [frame({ opcode: OP.text, payload: piece, fin: false })];
      for (let i = 1; i < n; i++) frames.push(frame({ opcode: OP.continuation, payload: piece, fin: i === n - 1 }));
      return { kind: 'fragments: over the size limit', bytes: Buffer.concat(frames), expect: close(1009) };
    },
    () => ({ kind: 'header: declares over the limit', bytes: frame({ opcode: pick([OP.text, OP.binary]), payload: bytes(int(100)), declaredLength: BigInt(maxPayload + 1 + int(1 << 30)) }), expect: close(1009) }),
    () => ({ kind: 'header: 64-bit length with the top bit set', bytes: frame({ opcode: OP.text, payload: 'x', declaredLength: (1n << 63n) + BigInt(int(1000)) }), expect: close(1009, 1002) }),
    // Binary messages are refused with a message, whatever they hold.
    () => ({ kind: 'binary: random', bytes: frame({ opcode: OP.binary, payload: bytes(int(4000)) }), expect: reply('bad message') }),
    () => ({ kind: 'binary: JSON inside', bytes: frame({ opcode: OP.binary, payload: JSON.stringify({ type: 'subscribe', stream: '*' }) }), expect: reply('bad message') }),
    // Invalid UTF-8 in a text frame, whole or split across fragments.
    () => ({ kind: 'text: invalid UTF-8', bytes: txt(Buffer.concat([Buffer.from('{"type":"'), pick(invalidUtf8), Buffer.from('"}')])), expect: close(1007) }),
    () => {
      const bad = Buffer.concat([Buffer.from('{"type":"ping"'), bytes(50 + int(200)), pick(invalidUtf8)]);
      const cut = 1 + int(bad.length - 1);
      return { kind: 'fragments: invalid UTF-8', bytes: Buffer.concat([frame({ opcode: OP.text, payload: bad.subarray(0, cut), fin: false }), frame({ opcode: OP.continuation, payload: bad.subarray(cut) })]), expect: close(1007) };
    },
    // Legal fragmentation of a bad message, with a ping in between: still just a bad message.
    () => {
      const s = Buffer.from(`{"type":"dance","n":"${'n'.repeat(20 + int(200))}"}`);
      const a = 1 + int(s.length - 2);
      return {
        kind: 'fragments: legal, unknown type',
        bytes: Buffer.concat([frame({ opcode: OP.text, payload: s.subarray(0, a), fin: false }), frame({ opcode: OP.ping, payload: 'p' }), frame({ opcode: OP.continuation, payload: s.subarray(a) })]),
        expect: reply('unknown type'),
      };
    },
    // Frames the protocol forbids.
    () => ({ kind: 'control: ping over 125 bytes', bytes: frame({ opcode: pick([OP.ping, OP.pong]), payload: bytes(126 + int(2000)) }), expect: close(1002) }),
    () => ({ kind: 'control: fragmented ping', bytes: frame({ opcode: pick([OP.ping, OP.pong, OP.close]), payload: 'x', fin: false }), expect: close(1002) }),
    () => ({ kind: 'continuation without a start', bytes: frame({ opcode: OP.continuation, payload: text(int(100)), fin: r() < 0.5 }), expect: close(1002) }),
    () => ({
      kind: 'new message inside a fragmented one',
      bytes: Buffer.concat([frame({ opcode: OP.text, payload: '{"type":', fin: false }), frame({ opcode: pick([OP.text, OP.binary]), payload: '"ping"}' })]),
      expect: close(1002),
    }),
    () => ({ kind: 'reserved bits set', bytes: frame({ opcode: pick([OP.text, OP.binary, OP.ping]), payload: '{"type":"ping"}', rsv: 1 + int(7) }), expect: close(1002) }),
    () => ({ kind: 'reserved opcode', bytes: frame({ opcode: pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), payload: text(int(50)) }), expect: close(1002) }),
    () => ({ kind: 'unmasked client frame', bytes: frame({ opcode: pick([OP.text, OP.binary, OP.ping]), payload: '{"type":"ping"}', mask: false }), expect: close(1002) }),
    () => ({ kind: 'close: one-byte payload', bytes: frame({ opcode: OP.close, payload: Buffer.from([3]) }), expect: close(1002) }),
    () => ({ kind: 'close: invalid code', bytes: frame({ opcode: OP.close, payload: closePayload(pick(INVALID_CODES), text(int(20))) }), expect: close(1002) }),
    () => ({ kind: 'close: invalid UTF-8 reason', bytes: frame({ opcode: OP.close, payload: closePayload(1000, pick(invalidUtf8)) }), expect: close(1007) }),
    () => {
      const code = pick(VALID_CODES);
      return { kind: 'close: valid code, then garbage', bytes: Buffer.concat([frame({ opcode: OP.close, payload: closePayload(code, text(int(40))) }), bytes(int(500))]), expect: close(code) };
    },
    // Legal control frames: a ping gets a pong frame, an unsolicited pong nothing.
    () => ({ kind: 'control: legal ping and pong', bytes: Buffer.concat([frame({ opcode: OP.ping, payload: bytes(int(126)) }), frame({ opcode: OP.pong, payload: bytes(int(126)) })]), expect: { kind: 'quiet' } }),
  ];
  return Array.from({ length: count }, (_, i) => {
    // Every case at least once, in order, then at random.
    const make = i < cases.length ? cases[i]! : pick(cases);
    return make();
  });
}

/** A frame the server sent (servers do not mask). */
export interface ServerFrame {
  opcode: number;
  fin: boolean;
  payload: Buffer;
}

/** Splits what the server sent into frames; `rest` is an incomplete tail. */
export function parseFrames(data: Buffer): { frames: ServerFrame[]; rest: Buffer } {
  const frames: ServerFrame[] = [];
  let o = 0;
  for (;;) {
    if (data.length - o < 2) break;
    const b0 = data[o]!;
    const b1 = data[o + 1]!;
    let len = b1 & 0x7f;
    let h = 2;
    if (len === 126) {
      if (data.length - o < 4) break;
      len = data.readUInt16BE(o + 2);
      h = 4;
    } else if (len === 127) {
      if (data.length - o < 10) break;
      len = Number(data.readBigUInt64BE(o + 2));
      h = 10;
    }
    if (data.length - o < h + len) break;
    frames.push({ opcode: b0 & 0xf, fin: (b0 & 0x80) !== 0, payload: data.subarray(o + h, o + h + len) });
    o += h + len;
  }
  return { frames, rest: data.subarray(o) };
}

export interface RawClient {
  socket: net.Socket;
  /** Everything received after the 101 answer. */
  received(): Buffer;
  /** Resolves once the TCP connection is closed (either side). */
  closed: Promise<void>;
  send(bytes: Buffer): void;
}

/** The upgrade request a browser would send. */
export function upgradeRequest(wsUrl: string, extra = ''): string {
  const u = new URL(wsUrl);
  return `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

/** Opens a TCP connection and completes the WebSocket handshake by hand. */
export function rawConnect(wsUrl: string, timeoutMs = 15_000): Promise<RawClient> {
  const u = new URL(wsUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(u.port), u.hostname);
    let head = Buffer.alloc(0);
    let body = Buffer.alloc(0);
    let open = false;
    const closed = new Promise<void>((res) => socket.once('close', () => res()));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('handshake timed out'));
    }, timeoutMs);
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      if (!open) reject(new Error(`closed during the handshake: ${head.toString('latin1').slice(0, 200)}`));
    });
    socket.on('connect', () => socket.write(upgradeRequest(wsUrl)));
    socket.on('data', (d: Buffer) => {
      if (open) {
        body = Buffer.concat([body, d]);
        return;
      }
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!/^HTTP\/1\.1 101/.test(head.toString('latin1'))) {
        socket.destroy();
        return;
      }
      open = true;
      clearTimeout(timer);
      body = head.subarray(end + 4);
      resolve({ socket, received: () => body, closed, send: (b) => socket.write(b) });
    });
  });
}

/** The code of the server's close frame, if it sent one. */
export function closeCode(frames: ServerFrame[]): number | undefined {
  const c = frames.find((f) => f.opcode === OP.close);
  if (!c) return undefined;
  return c.payload.length >= 2 ? c.payload.readUInt16BE(0) : 1005;
}

/** The server's text messages, parsed. */
export function messages(frames: ServerFrame[]): { type: string; [k: string]: unknown }[] {
  return frames.filter((f) => f.opcode === OP.text).map((f) => JSON.parse(f.payload.toString('utf8')) as { type: string });
}

/** Bytes an error answer may take. */
export const MAX_ANSWER = 1024;

export interface ProbeResult {
  probe: WsProbe;
  /** What happened: `reply <error>`, `close <code>`, `quiet`, `dropped` (closed without a close frame) or `stalled`. */
  got: string;
  ok: boolean;
}

/**
 * Sends one probe on a fresh connection, then `{"type":"ping"}` as a barrier: a server that
 * handled the probe and kept the socket open answers `pong` after whatever it said about it.
 */
export async function runProbe(wsUrl: string, probe: WsProbe, timeoutMs = 15_000): Promise<ProbeResult> {
  const c = await rawConnect(wsUrl, timeoutMs);
  c.send(probe.bytes);
  c.send(frame({ opcode: OP.text, payload: '{"type":"ping"}' }));
  const end = Date.now() + timeoutMs;
  let closed = false;
  void c.closed.then(() => (closed = true));
  let got = 'stalled';
  for (;;) {
    const { frames } = parseFrames(c.received());
    const code = closeCode(frames);
    const texts = messages(frames);
    if (code !== undefined) {
      got = `close ${code}`;
      break;
    }
    if (texts.some((m) => m.type === 'pong')) {
      const error = texts.find((m) => m.type === 'error');
      got = error ? `reply ${String(error.error)}` : 'quiet';
      // An answer quotes at most a little of what it answers: a client cannot make the server
      // queue 64 KiB echoes of its own messages.
      const size = Math.max(0, ...frames.filter((f) => f.opcode === OP.text).map((f) => f.payload.length));
      if (size > MAX_ANSWER) got += ` (an answer of ${size} bytes)`;
      break;
    }
    if (closed) {
      got = 'dropped';
      break;
    }
    if (Date.now() > end) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  // A closed WebSocket must also end its TCP connection (the server does not keep it).
  if (got.startsWith('close')) {
    const ended = await Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs))]);
    if (!ended) got += ' (TCP left open)';
  }
  c.socket.destroy();
  const e = probe.expect;
  const ok = e.kind === 'reply' ? got === `reply ${e.error}` : e.kind === 'quiet' ? got === 'quiet' : e.codes.some((code) => got === `close ${code}`);
  return { probe, got, ok };
}

export type DisconnectKind = 'mid-handshake' | 'after the request' | 'mid-message' | 'after subscribe' | 'after subscribe, unread' | 'reset after subscribe';
export const DISCONNECT_KINDS: readonly DisconnectKind[] = ['mid-handshake', 'after the request', 'mid-message', 'after subscribe', 'after subscribe, unread', 'reset after subscribe'];

/**
 * One abrupt disconnect: the client goes away (socket.destroy(), or a TCP reset) at the point
 * `kind` names, never with a close frame. Resolves once the socket is gone; throws only if the
 * server refused the handshake of a kind that needs it.
 */
export async function abruptDisconnect(wsUrl: string, kind: DisconnectKind, r: () => number): Promise<void> {
  const u = new URL(wsUrl);
  if (kind === 'mid-handshake' || kind === 'after the request') {
    const request = Buffer.from(upgradeRequest(wsUrl));
    const socket = net.connect(Number(u.port), u.hostname);
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()).once('close', () => resolve()));
    socket.write(kind === 'mid-handshake' ? request.subarray(0, 1 + Math.floor(r() * (request.length - 2))) : request);
    // Sometimes at once, sometimes while the server answers.
    if (r() < 0.5) await new Promise((res) => setTimeout(res, Math.floor(r() * 5)));
    if (r() < 0.5) socket.destroy();
    else socket.resetAndDestroy();
    return;
  }
  const c = await rawConnect(wsUrl);
  if (kind === 'mid-message') {
    const whole = frame({ opcode: OP.text, payload: JSON.stringify({ type: 'subscribe', stream: '*', pad: 'p'.repeat(Math.floor(r() * 3000)) }) });
    c.send(whole.subarray(0, 1 + Math.floor(r() * (whole.length - 1))));
    await new Promise((res) => setTimeout(res, Math.floor(r() * 5)));
    c.socket.destroy();
    return;
  }
  if (kind === 'after subscribe, unread') c.socket.pause();
  c.send(frame({ opcode: OP.text, payload: '{"type":"subscribe","stream":"*"}' }));
  // Until the first prediction or up to 300 ms, so that the server is writing when it goes.
  const end = Date.now() + Math.floor(r() * 300);
  while (Date.now() < end && !messages(parseFrames(c.received()).frames).some((m) => m.type === 'prediction')) await new Promise((res) => setTimeout(res, 5));
  if (kind === 'reset after subscribe') c.socket.resetAndDestroy();
  else c.socket.destroy();
  await c.closed;
}

/**
 * A client that subscribes to everything and never reads again, and keeps asking for more (a
 * subscribe for every stream, pings, messages with errors): its TCP receive window fills, then
 * the server's buffers. It writes 200 messages every `pauseMs`. `stop()` ends its traffic and
 * hands back the bytes it wrote.
 */
export async function slowReader(wsUrl: string, pauseMs = 10): Promise<{ client: RawClient; stop(): Promise<number> }> {
  const c = await rawConnect(wsUrl);
  c.socket.pause();
  c.send(frame({ opcode: OP.text, payload: '{"type":"subscribe","stream":"*"}' }));
  const batch = Buffer.concat(
    Array.from({ length: 200 }, (_, i) =>
      frame({ opcode: OP.text, payload: i % 3 === 0 ? '{"type":"subscribe","stream":"*"}' : i % 3 === 1 ? '{"type":"ping"}' : `{"type":"subscribe","stream":"${'q'.repeat(150)}"}` }),
    ),
  );
  let written = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped && !c.socket.destroyed) {
      // The server reads what it is sent even while it cannot write: the client's own
      // buffer is the only bound on this side, so wait for it to drain.
      if (!c.socket.write(batch)) await new Promise((res) => c.socket.once('drain', res).once('close', res));
      written += batch.length;
      await new Promise((res) => setTimeout(res, pauseMs));
    }
  })();
  return {
    client: c,
    async stop() {
      stopped = true;
      await loop;
      return written;
    },
  };
}

/**
 * A client that never reads and sends WebSocket pings (125 bytes each) as fast as it can: each
 * asks for a pong the server cannot deliver. ws (8.17+) ends such a connection once 60 pongs are
 * waiting, without a close frame (nothing can be written to it). Resolves with whether the server
 * closed the connection and the bytes written until then (or until `limitBytes`).
 */
export async function pingFlood(wsUrl: string, limitBytes = 16 * 2 ** 20): Promise<{ closed: boolean; written: number }> {
  const c = await rawConnect(wsUrl);
  c.socket.pause();
  let closed = false;
  void c.closed.then(() => (closed = true));
  const batch = Buffer.concat(Array.from({ length: 1000 }, () => frame({ opcode: OP.ping, payload: Buffer.alloc(125, 0x70) })));
  let written = 0;
  while (!closed && written < limitBytes) {
    if (!c.socket.write(batch)) await Promise.race([new Promise((res) => c.socket.once('drain', res)), c.closed, new Promise((res) => setTimeout(res, 1000))]);
    written += batch.length;
    await new Promise((res) => setImmediate(res));
  }
  const wasClosed = closed;
  c.socket.destroy();
  return { closed: wasClosed, written };
}
