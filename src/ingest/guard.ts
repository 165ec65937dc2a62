/**
 * Enforces the address policy (policy.ts) on every connection ffmpeg makes for one network
 * source, not only on the URL it was given: checking the URL's host before starting ffmpeg is not
 * enough, because ffmpeg resolves the name again (DNS rebinding), follows HTTP redirects, opens the
 * segments an HLS playlist names, and follows RTSP redirects. So ffmpeg connects only to the
 * guard, which resolves and checks each destination itself and connects to the checked address:
 *
 * - HTTP(S), and every TLS connection (https, rtsps): a forward proxy on a loopback port, given to
 *   ffmpeg as `http_proxy`. Plain HTTP requests arrive in absolute form and are forwarded; TLS
 *   goes through `CONNECT`. Every hop is checked: redirects are followed by ffmpeg, through the
 *   proxy, each to a checked address.
 * - Plain RTSP over TCP: a relay on a loopback port; ffmpeg opens the source's URL with the relay
 *   as host. The relay checks the source's host for each connection and reads the server's RTSP
 *   answers: a redirect (3xx) is not followed, it ends the connection as a refusal, because
 *   ffmpeg would open the new URL directly.
 * - RTSP over UDP cannot be relayed (ffmpeg sends RTP/RTCP to the host of the URL it opened), so
 *   ffmpeg is given the checked address itself; redirects are not seen there, which is why TCP is
 *   the default and the only transport the API offers.
 *
 * Failures to reach an allowed destination are recorded for the logs and reported to clients as
 * "could not connect" by ingest, so that refused, closed, filtered and non-video ports look alike.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressPolicy } from './policy.js';
import { SourceError, type HttpSource, type RtspSource } from './source.js';

export interface GuardRoute {
  /** The URL ffmpeg opens: the source's own, the relay's (plain RTSP over TCP) or the checked address (UDP). */
  target: string;
  /** The proxy that every HTTP request and TLS connection of ffmpeg must use (`http_proxy`). */
  httpProxy: string;
}

export interface SourceGuard {
  /** Starts the guard (once) and returns the route for a new connection attempt; forgets the last attempt's outcome. */
  open(): Promise<GuardRoute>;
  /** What the guard saw since the last `open()`: a refused destination, or a failure to reach an allowed one. */
  outcome(): { refusal?: string; failure?: string };
  close(): Promise<void>;
}

export interface SourceGuardOptions {
  policy: AddressPolicy;
  rtspTransport: 'tcp' | 'udp';
}

const RTSP_PORT = 554;
/** How long the guard waits for a destination to accept a connection. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Largest RTSP header block the relay waits for before giving up on the server. */
const MAX_RTSP_HEADER = 64 * 1024;
const HOP_BY_HOP = ['proxy-connection', 'proxy-authorization', 'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

/** A socket error in a few words: "connection refused", "timed out", ... */
function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    ETIMEDOUT: 'timed out',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name lookup failed',
  };
  return (code && words[code]) ?? (e as Error)?.message ?? String(e);
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** Splits `host:port` (CONNECT's target; IPv6 in brackets). */
function splitHostPort(target: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(target);
  const port = Number(m?.[2]);
  return m && port > 0 && port < 65536 ? { host: m[1]!, port } : undefined;
}

/**
 * Reads the server-to-client side of an RTSP connection the way ffmpeg's reply reader does
 * (libavformat/rtsp.c, ff_rtsp_read_reply) and returns the bytes that may be passed on, or
 * undefined once an answer's status is a redirect (3xx). Like ffmpeg: lines end at "\n", every
 * "\r" is dropped, the status is the second word of the first line read as atoi() would, an empty
 * line ends the header, `Content-Length` bytes of body follow, and a "$" at the start of any line
 * is an interleaved packet (channel, 16-bit length, data) skipped wherever it comes. A header
 * block is held back until it is complete and checked, because ffmpeg acts on a status line as
 * soon as it reads it; bodies and packets between answers pass as they come. Throws when a header
 * block grows past 64 KiB.
 */
/** `(int) strtol(text, NULL, 10)`, as ffmpeg reads Content-Length: C spaces, saturation at 64 bits, truncation to 32. */
function cLong(text: string): number {
  const digits = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(text)?.[1];
  if (digits === undefined) return 0;
  const max = (1n << 63n) - 1n;
  let v = BigInt(digits);
  v = v > max ? max : v < -max - 1n ? -max - 1n : v;
  return Number(BigInt.asIntN(32, v));
}

function rtspAnswerFilter(): (chunk: Buffer) => Buffer | undefined {
  let held: Buffer[] = [];
  let heldBytes = 0;
  let inHeader = false; // bytes of an answer's header are being read (and held)
  let line = '';
  let lines = 0;
  let contentLength = 0;
  let packetHead = 0; // bytes of a "$" packet's header still to read
  let packetLength: number[] = [];
  let pass = 0; // bytes of a packet or body still to pass unread

  return (chunk) => {
    const out: Buffer[] = [];
    let from = 0; // start of the bytes not yet sent to `out` or `held`
    const emit = (to: number) => {
      if (to > from) (inHeader ? held : out).push(chunk.subarray(from, to));
      if (inHeader) heldBytes += to - from;
      from = to;
    };
    for (let i = 0; i < chunk.length; ) {
      if (pass > 0) {
        const n = Math.min(pass, chunk.length - i);
        pass -= n;
        i += n;
        continue;
      }
      const c = chunk[i]!;
      if (packetHead > 0) {
        packetLength.push(c);
        packetHead--;
        if (packetHead === 0) pass = (packetLength[1]! << 8) | packetLength[2]!;
        i++;
        continue;
      }
      if (c === 0x24 && line === '') {
        packetHead = 3;
        packetLength = [];
        i++;
        continue;
      }
      if (!inHeader) {
        emit(i);
        inHeader = true;
      }
      i++;
      if (c === 0x0d) continue;
      if (c !== 0x0a) {
        if (line.length < 4095) line += String.fromCharCode(c);
        continue;
      }
      if (line === '') {
        // The header is complete and was checked: it passes, then its body.
        emit(i);
        out.push(...held);
        held = [];
        heldBytes = 0;
        inHeader = false;
        pass = contentLength > 0 ? contentLength : 0;
        lines = 0;
        contentLength = 0;
        continue;
      }
      if (lines === 0) {
        const status = parseInt(line.trim().split(/\s+/)[1] ?? '', 10);
        if (status >= 300 && status < 400) return undefined;
      } else if (/^content-length:/i.test(line)) {
        contentLength = cLong(line.slice(15));
      }
      lines++;
      line = '';
    }
    emit(chunk.length);
    if (heldBytes > MAX_RTSP_HEADER) throw new Error('not an RTSP server (an answer header over 64 KiB)');
    return out.length === 1 ? out[0] : Buffer.concat(out);
  };
}

/**
 * @example
 * const guard = createSourceGuard(source, { policy: createAddressPolicy(), rtspTransport: 'tcp' });
 * const { target, httpProxy } = await guard.open(); // ffmpeg -i target, with http_proxy=httpProxy
 */
export function createSourceGuard(source: HttpSource | RtspSource, options: SourceGuardOptions): SourceGuard {
  const { policy, rtspTransport } = options;
  const url = new URL(source.url);
  const sockets = new Set<net.Socket>();
  let refusal: string | undefined;
  let failure: string | undefined;
  let started: Promise<{ proxyPort: number; relayPort?: number }> | undefined;
  let closed: Promise<void> | undefined;

  const track = (s: net.Socket): net.Socket => {
    sockets.add(s);
    s.on('error', () => s.destroy());
    s.once('close', () => sockets.delete(s));
    return s;
  };

  /** Resolves and checks `host`, recording why it cannot be reached. */
  const reach = async (host: string, port: number): Promise<string | undefined> => {
    try {
      return await policy.resolve(host);
    } catch (e) {
      if (e instanceof SourceError) refusal ??= e.message;
      else failure = `${host}:${port}: ${reason(e)}`;
      return undefined;
    }
  };

  /**
   * Connects `client`'s destination, a checked address; calls back with the socket, or undefined
   * after recording the failure. Gives up after CONNECT_TIMEOUT_MS, and at once if the client left.
   */
  const dial = (client: net.Socket, host: string, address: string, port: number, then: (s: net.Socket | undefined) => void) => {
    if (client.destroyed) return;
    const upstream = track(net.connect({ host: address, port, timeout: CONNECT_TIMEOUT_MS }));
    let connected = false;
    upstream.once('timeout', () => upstream.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    upstream.once('connect', () => {
      connected = true;
      upstream.setTimeout(0);
      if (client.destroyed) return void upstream.destroy();
      then(upstream);
    });
    upstream.once('error', (e) => {
      if (connected) return;
      failure = `${host}:${port}: ${reason(e)}`;
      then(undefined);
    });
  };

  const proxy = http.createServer((req, res) => {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      return res.writeHead(400).end();
    }
    if (target.protocol !== 'http:' || !['GET', 'HEAD'].includes(req.method ?? '')) return res.writeHead(405).end();
    const port = Number(target.port || 80);
    void reach(target.hostname, port).then((address) => {
      if (req.socket.destroyed) return; // ffmpeg left while the name resolved
      if (!address) return res.writeHead(refusal ? 403 : 502).end();
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !HOP_BY_HOP.includes(k)));
      const up = http.request({ host: address, port, method: req.method, path: target.pathname + target.search, headers: { ...headers, connection: 'close' }, setHost: false, agent: false });
      up.on('socket', (s) => {
        track(s);
        // Bounded while connecting only: a live stream may go quiet for longer.
        s.setTimeout(CONNECT_TIMEOUT_MS, () => up.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
        s.once('connect', () => s.setTimeout(0));
      });
      up.on('response', (answer) => {
        res.writeHead(answer.statusCode ?? 502, Object.fromEntries(Object.entries(answer.headers).filter(([k]) => !HOP_BY_HOP.includes(k))));
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      });
      up.on('error', (e) => {
        failure = `${target.host}: ${reason(e)}`;
        if (res.headersSent) res.destroy();
        else res.writeHead(502).end();
      });
      res.on('close', () => up.destroy());
      up.end();
    });
  });
  proxy.on('connection', track);
  proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const to = splitHostPort(req.url ?? '');
    if (!to) return client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    void reach(to.host, to.port).then((address) => {
      if (!address) return client.end(`HTTP/1.1 ${refusal ? '403 Forbidden' : '502 Bad Gateway'}\r\n\r\n`);
      dial(client, to.host, address, to.port, (upstream) => {
        if (!upstream) return client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length) upstream.write(head);
        upstream.pipe(client).pipe(upstream);
        upstream.once('close', () => client.destroy());
        client.once('close', () => upstream.destroy());
      });
    });
  });
  proxy.on('clientError', (_e, s) => s.destroy());

  const relay =
    url.protocol === 'rtsp:' && rtspTransport === 'tcp'
      ? net.createServer((client) => {
          track(client);
          client.pause();
          const port = Number(url.port || RTSP_PORT);
          void reach(url.hostname, port).then((address) => {
            if (!address) return client.destroy();
            dial(client, url.hostname, address, port, (upstream) => {
              if (!upstream) return client.destroy();
              const filter = rtspAnswerFilter();
              upstream.on('data', (chunk: Buffer) => {
                let passed: Buffer | undefined;
                try {
                  passed = filter(chunk);
                  if (!passed) refusal ??= 'Source refused: the RTSP server answered with a redirect, and redirects are not followed';
                } catch (e) {
                  failure = `${url.host}: ${(e as Error).message}`;
                }
                if (!passed) {
                  client.destroy();
                  upstream.destroy();
                } else if (passed.length && !client.write(passed)) upstream.pause();
              });
              client.on('drain', () => upstream.resume());
              client.pipe(upstream);
              client.resume();
              upstream.once('close', () => client.destroy());
              client.once('close', () => upstream.destroy());
            });
          });
        })
      : undefined;

  return {
    open() {
      if (closed) return Promise.reject(new Error('the source guard is closed'));
      refusal = undefined;
      failure = undefined;
      started ??= Promise.all([listen(proxy), relay ? listen(relay) : undefined]).then(([proxyPort, relayPort]) => ({ proxyPort, relayPort }));
      return started.then(async ({ proxyPort, relayPort }) => {
        const httpProxy = `http://127.0.0.1:${proxyPort}`;
        if (url.protocol === 'rtsp:') {
          const to = new URL(source.url);
          if (relayPort !== undefined) {
            to.hostname = '127.0.0.1';
            to.port = String(relayPort);
          } else {
            // UDP: ffmpeg connects itself, to the address checked here.
            const address = await policy.resolve(url.hostname);
            to.hostname = net.isIP(address) === 6 ? `[${address}]` : address;
          }
          return { target: to.href, httpProxy };
        }
        return { target: source.url, httpProxy };
      });
    },
    outcome: () => ({ ...(refusal ? { refusal } : {}), ...(failure ? { failure } : {}) }),
    close() {
      closed ??= (async () => {
        await started?.catch(() => undefined);
        for (const s of sockets) s.destroy();
        const stop = (server: net.Server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
        await Promise.all([stop(proxy), ...(relay ? [stop(relay)] : [])]);
      })();
      return closed;
    },
  };
}
