/**
 * The WebSocket side: fans every stream's predictions and state changes out to the clients
 * subscribed to it.
 *
 * Each client has a bounded send queue. Messages go to the socket only while `ws.bufferedAmount`
 * is under `maxBufferedBytes`; beyond that they wait in a queue of at most `maxQueue` messages,
 * and when that is full the OLDEST prediction is dropped and counted, and the client is told with
 * `{type:'dropped', stream, count}` as soon as it has room again. So a slow client costs at most
 * maxBufferedBytes + maxQueue messages of memory and never slows the pipeline or anyone else.
 * A heartbeat pings every client each `heartbeatMs` and terminates those that did not answer the
 * previous ping.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { redact } from '../ingest/index.js';
import type { Engine, StreamEvent, StreamHandle } from '../pipeline/types.js';
import { createAuthGate, presentedToken, type AuthGate } from './auth.js';
import { ClientMessage, describeIssues } from './schemas.js';
import type { Refusal } from './security.js';

export interface HubOptions {
  engine: Engine;
  /** Bearer token required to connect; undefined = open. Ignored when `auth` is given. */
  token?: string;
  /** The token check shared with the HTTP API (one count of failed attempts per client). */
  auth?: AuthGate;
  /** Host and Origin checks (security.ts): why an upgrade is refused, or undefined. */
  vetUpgrade?: (req: IncomingMessage) => Refusal | undefined;
  /** URL path of the WebSocket endpoint. */
  path?: string;
  heartbeatMs?: number;
  /** How often streams opened directly on the engine (not through the API) are picked up. */
  syncMs?: number;
  /** Bytes a client may have in flight in the socket before messages queue. */
  maxBufferedBytes?: number;
  /** Messages a client may have queued before its oldest predictions are dropped. */
  maxQueue?: number;
  /** Largest message a client may send. */
  maxPayload?: number;
}

export interface ClientStats {
  id: number;
  subscriptions: string[];
  queued: number;
  queuedBytes: number;
  bufferedAmount: number;
  sent: number;
  dropped: number;
}

export interface HubStats {
  clients: number;
  messagesSent: number;
  framesDropped: number;
  clientsTimedOut: number;
  queueDepth: number;
  bufferedBytes: number;
  rejectedUpgrades: number;
}

export interface Hub {
  /**
   * Handles an HTTP upgrade; rejects foreign Hosts (421) and Origins (403), wrong paths (404),
   * missing or bad tokens (401) and clients that keep guessing (429).
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Starts forwarding one stream's events (idempotent). */
  attach(handle: StreamHandle): void;
  /** Attaches streams the engine has that the hub does not, and detaches vanished ones. */
  sync(): void;
  stats(): HubStats;
  clientStats(): ClientStats[];
  close(): Promise<void>;
}

interface Queued {
  data: string;
  /** Set for predictions: only they may be dropped. */
  stream?: string;
}

interface Client {
  id: number;
  ws: WebSocket;
  subs: Set<string>;
  queue: Queued[];
  queuedBytes: number;
  /** Predictions dropped per stream and not yet reported. */
  unreported: Map<string, number>;
  alive: boolean;
  sent: number;
  dropped: number;
}

const DEFAULTS = {
  path: '/ws',
  heartbeatMs: 30_000,
  syncMs: 1000,
  maxBufferedBytes: 1 << 20,
  maxQueue: 32,
  maxPayload: 64 * 1024,
};

/** Characters of a client's message quoted back in an error. */
const MAX_DETAIL = 200;

function reject(socket: Duplex, status: number, text: string, error: string, headers = ''): void {
  const body = JSON.stringify({ error });
  // Destroyed once written: a client that never closes its side does not keep the socket.
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${headers}Connection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

/**
 * @example
 * const hub = createHub({ engine, token: settings.token });
 * httpServer.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head));
 */
export function createHub(options: HubOptions): Hub {
  const { engine, token, path, heartbeatMs, syncMs, maxBufferedBytes, maxQueue, maxPayload, vetUpgrade } = { ...DEFAULTS, ...options };
  const auth = options.auth ?? createAuthGate({ token });
  const wss = new WebSocketServer({ noServer: true, maxPayload });
  const clients = new Set<Client>();
  const attached = new Map<string, () => void>();
  const totals = { messagesSent: 0, framesDropped: 0, clientsTimedOut: 0, rejectedUpgrades: 0 };
  let nextId = 1;

  const pump = (c: Client) => {
    while (c.ws.readyState === WebSocket.OPEN && c.ws.bufferedAmount < maxBufferedBytes) {
      let data: string;
      if (c.unreported.size) {
        const [stream, count] = c.unreported.entries().next().value as [string, number];
        c.unreported.delete(stream);
        data = JSON.stringify({ type: 'dropped', stream, count });
      } else {
        const next = c.queue.shift();
        if (!next) return;
        c.queuedBytes -= next.data.length;
        data = next.data;
      }
      c.sent++;
      totals.messagesSent++;
      // The callback fires once the data left the process: room for the next message.
      c.ws.send(data, () => pump(c));
    }
  };

  const enqueue = (c: Client, item: Queued) => {
    c.queue.push(item);
    c.queuedBytes += item.data.length;
    while (c.queue.length > maxQueue) {
      let i = c.queue.findIndex((q) => q.stream !== undefined);
      if (i < 0) i = 0;
      const [old] = c.queue.splice(i, 1);
      c.queuedBytes -= old!.data.length;
      if (old!.stream !== undefined) {
        c.unreported.set(old!.stream, (c.unreported.get(old!.stream) ?? 0) + 1);
        c.dropped++;
        totals.framesDropped++;
      }
    }
    pump(c);
  };

  const send = (c: Client, message: object) => enqueue(c, { data: JSON.stringify(message) });
  /** An error about a client's message; what it quotes is cut short, so an answer stays small whatever was sent. */
  const refuse = (c: Client, error: string, detail: string) =>
    send(c, { type: 'error', error, detail: detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL)}... (${detail.length} characters)` : detail });

  const onEvent = (id: string, event: StreamEvent) => {
    let data: string | undefined;
    for (const c of clients) {
      if (!c.subs.has(id) && !c.subs.has('*')) continue;
      if (event.type === 'output') {
        data ??= JSON.stringify({ type: 'prediction', ...event.output });
        enqueue(c, { data, stream: id });
      } else {
        data ??= JSON.stringify({ type: 'stream', stream: id, state: event.state, ...(event.error ? { error: redact(event.error) } : {}) });
        enqueue(c, { data });
      }
    }
    if (event.type === 'state' && event.state === 'stopped') detach(id);
  };

  const attach = (handle: StreamHandle) => {
    if (attached.has(handle.id)) return;
    attached.set(handle.id, handle.subscribe((event) => onEvent(handle.id, event)));
  };

  const detach = (id: string) => {
    attached.get(id)?.();
    attached.delete(id);
  };

  const sync = () => {
    const live = new Map(engine.streams().map((h) => [h.id, h]));
    for (const h of live.values()) attach(h);
    for (const id of [...attached.keys()]) if (!live.has(id)) detach(id);
  };

  const stateOf = (handle: StreamHandle) => {
    const info = handle.info();
    return { type: 'stream', stream: handle.id, state: info.state, ...(info.lastError ? { error: redact(info.lastError) } : {}) };
  };

  const onMessage = (c: Client, raw: RawData, isBinary: boolean) => {
    // Any message proves the client is alive, as a pong would.
    c.alive = true;
    if (isBinary) return refuse(c, 'bad message', 'binary messages are not accepted');
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString());
    } catch {
      return refuse(c, 'bad message', 'not valid JSON');
    }
    const type = (parsed as { type?: unknown } | null)?.type;
    if (typeof type === 'string' && !['subscribe', 'unsubscribe', 'ping'].includes(type)) {
      return refuse(c, 'unknown type', type);
    }
    const msg = ClientMessage.safeParse(parsed);
    if (!msg.success) return refuse(c, 'bad message', describeIssues(msg.error));
    const m = msg.data;
    if (m.type === 'ping') return send(c, { type: 'pong' });
    if (m.type === 'unsubscribe') {
      if (m.stream === '*') c.subs.clear();
      else c.subs.delete(m.stream);
      return;
    }
    sync();
    const handles = engine.streams();
    if (m.stream !== '*' && !handles.some((h) => h.id === m.stream)) {
      return refuse(c, 'unknown stream', m.stream);
    }
    c.subs.add(m.stream);
    // The current state first, so a client knows where each stream stands before its frames.
    for (const h of handles) if (m.stream === '*' || h.id === m.stream) send(c, stateOf(h));
  };

  wss.on('connection', (ws: WebSocket) => {
    const c: Client = { id: nextId++, ws, subs: new Set(), queue: [], queuedBytes: 0, unreported: new Map(), alive: true, sent: 0, dropped: 0 };
    clients.add(c);
    ws.on('message', (raw, isBinary) => onMessage(c, raw, isBinary));
    ws.on('pong', () => (c.alive = true));
    // ws has already sent the close frame (1002, 1007, 1009...) and ends the connection once it
    // is written (or after its close timeout): terminating here could reset it before the client
    // reads why. Errors before any close (a reset socket) end it at once.
    ws.on('error', () => {
      if (ws.readyState !== WebSocket.CLOSING) ws.terminate();
    });
    ws.on('close', () => {
      clients.delete(c);
      c.queue.length = 0;
    });
  });

  const heartbeat = setInterval(() => {
    for (const c of clients) {
      if (!c.alive) {
        totals.clientsTimedOut++;
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }, heartbeatMs);
  heartbeat.unref();
  const syncTimer = setInterval(sync, syncMs);
  syncTimer.unref();

  sync();

  return {
    handleUpgrade(req, socket, head) {
      // Node hands the socket over without an error listener: a client that resets it (while it
      // is refused below, or during the handshake) would otherwise end the process.
      socket.on('error', () => socket.destroy());
      const refused = vetUpgrade?.(req);
      if (refused) {
        totals.rejectedUpgrades++;
        return reject(socket, refused.status, refused.status === 421 ? 'Misdirected Request' : 'Forbidden', refused.error);
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== path) {
        totals.rejectedUpgrades++;
        return reject(socket, 404, 'Not Found', 'unknown WebSocket path');
      }
      const allowed = auth.check(req.socket.remoteAddress, presentedToken(req.headers.authorization, url));
      if (!allowed.ok) {
        totals.rejectedUpgrades++;
        if (allowed.status === 429) return reject(socket, 429, 'Too Many Requests', 'too many failed attempts', `Retry-After: ${allowed.retryAfterSeconds}\r\n`);
        return reject(socket, 401, 'Unauthorized', 'missing or bad token');
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    },
    attach,
    sync,
    stats() {
      let queueDepth = 0;
      let bufferedBytes = 0;
      for (const c of clients) {
        queueDepth += c.queue.length;
        bufferedBytes += c.ws.bufferedAmount;
      }
      return { clients: clients.size, queueDepth, bufferedBytes, ...totals };
    },
    clientStats: () =>
      [...clients].map((c) => ({
        id: c.id,
        subscriptions: [...c.subs],
        queued: c.queue.length,
        queuedBytes: c.queuedBytes,
        bufferedAmount: c.ws.bufferedAmount,
        sent: c.sent,
        dropped: c.dropped,
      })),
    async close() {
      clearInterval(heartbeat);
      clearInterval(syncTimer);
      for (const id of [...attached.keys()]) detach(id);
      for (const c of clients) c.ws.terminate();
      clients.clear();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
