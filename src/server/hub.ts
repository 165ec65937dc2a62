/**
 * The WebSocket side: pushes what the engine and the jobs tell it to the clients that asked.
 * Predictions and stream changes go to the clients subscribed to that stream (or to `*`); the
 * list of streams (opened, changed, removed) to `*` subscribers; jobs to clients that sent
 * `subscribe-jobs`. Nothing is polled: the engine and the jobs emit events.
 *
 * Each client has a bounded send queue (ws-client.ts), so a slow client never slows the pipeline
 * or anyone else. A heartbeat pings every client each `heartbeatMs` and terminates those that
 * did not answer the previous ping.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { redact } from '../ingest/index.js';
import type { Engine, EngineEvent, StreamInfo } from '../pipeline/types.js';
import { createAuthGate, type AuthGate } from './auth.js';
import type { JobEvent, Jobs } from './jobs.js';
import { ClientMessage, describeIssues, type ServerMessage } from './schemas.js';
import type { Refusal } from './security.js';
import { createClient, type Client, type ClientLimits, type ClientStats, type SendTotals } from './ws-client.js';
import { refuseUpgrade, upgradeRefusal } from './ws-upgrade.js';

export type { ClientStats } from './ws-client.js';

export interface HubOptions extends Partial<ClientLimits> {
  engine: Pick<Engine, 'streams' | 'subscribe'>;
  /** The jobs whose changes `subscribe-jobs` clients receive; none: such clients get the empty list. */
  jobs?: Pick<Jobs, 'list' | 'subscribe'>;
  /** Bearer token required to connect; undefined = open. Ignored when `auth` is given. */
  token?: string;
  /** The token check shared with the HTTP API (one count of failed attempts per client). */
  auth?: AuthGate;
  /** Host and Origin checks (security.ts): why an upgrade is refused, or undefined. */
  vetUpgrade?: (req: IncomingMessage) => Refusal | undefined;
  /** URL path of the WebSocket endpoint. */
  path?: string;
  heartbeatMs?: number;
  /** Largest message a client may send. */
  maxPayload?: number;
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
  stats(): HubStats;
  clientStats(): ClientStats[];
  close(): Promise<void>;
}

const DEFAULTS = {
  path: '/ws',
  heartbeatMs: 30_000,
  maxBufferedBytes: 1 << 20,
  maxQueue: 32,
  maxPayload: 64 * 1024,
};

/** Characters of a client's message quoted back in an error. */
const MAX_DETAIL = 200;

const CLIENT_TYPES: readonly string[] = ClientMessage.options.map((o) => o.shape.type.value);

/** A stream as clients see it: credentials in its source, name or error redacted. */
export function publicInfo(info: StreamInfo): StreamInfo {
  return { ...info, source: redact(info.source), name: redact(info.name), ...(info.lastError ? { lastError: redact(info.lastError) } : {}) };
}

const streamMessage = (info: StreamInfo, error?: string): ServerMessage => ({
  type: 'stream',
  stream: info.id,
  state: info.state,
  ...(error ? { error: redact(error) } : {}),
  info: publicInfo(info),
});

/** Engine and job events → the message and who gets it. */
function toMessage(event: EngineEvent): { message: ServerMessage; stream: string; prediction: boolean } {
  if (event.type === 'output') return { message: { type: 'prediction', ...event.output }, stream: event.output.stream, prediction: true };
  if (event.type === 'stream') return { message: streamMessage(event.info, event.error), stream: event.info.id, prediction: false };
  return { message: { type: 'stream-removed', stream: event.stream }, stream: event.stream, prediction: false };
}

const jobMessage = (event: JobEvent): ServerMessage => (event.type === 'job' ? { type: 'job', job: event.job } : { type: 'job-removed', job: event.id });

/**
 * @example
 * const hub = createHub({ engine, jobs, token: settings.token });
 * httpServer.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head));
 */
export function createHub(options: HubOptions): Hub {
  const { engine, jobs, token, path, heartbeatMs, maxBufferedBytes, maxQueue, maxPayload, vetUpgrade } = { ...DEFAULTS, ...options };
  const auth = options.auth ?? createAuthGate({ token });
  const wss = new WebSocketServer({ noServer: true, maxPayload });
  const clients = new Set<Client>();
  const totals: SendTotals & { clientsTimedOut: number; rejectedUpgrades: number } = { messagesSent: 0, framesDropped: 0, clientsTimedOut: 0, rejectedUpgrades: 0 };
  let nextId = 1;

  /** An error about a client's message; what it quotes is cut short, so an answer stays small whatever was sent. */
  const refuse = (c: Client, error: string, detail: string) =>
    c.send({ type: 'error', error, detail: detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL)}... (${detail.length} characters)` : detail });

  const unsubscribeEngine = engine.subscribe((event) => {
    const { message, stream, prediction } = toMessage(event);
    const data = JSON.stringify(message);
    for (const c of clients) if (c.subs.has(stream) || c.subs.has('*')) c.enqueue(prediction ? { data, stream } : { data });
  });
  const unsubscribeJobs = jobs?.subscribe((event) => {
    const data = JSON.stringify(jobMessage(event));
    for (const c of clients) if (c.jobs) c.enqueue({ data });
  });

  const subscribe = (c: Client, stream: string) => {
    const handles = engine.streams();
    if (stream !== '*' && !handles.some((h) => h.id === stream)) return refuse(c, 'unknown stream', stream);
    c.subs.add(stream);
    // The current state first, so a client knows where each stream stands before its frames.
    for (const h of handles) {
      if (stream !== '*' && h.id !== stream) continue;
      const info = h.info();
      c.send(streamMessage(info, info.lastError));
    }
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
    if (typeof type === 'string' && !CLIENT_TYPES.includes(type)) return refuse(c, 'unknown type', type);
    const msg = ClientMessage.safeParse(parsed);
    if (!msg.success) return refuse(c, 'bad message', describeIssues(msg.error));
    const m = msg.data;
    switch (m.type) {
      case 'ping':
        return c.send({ type: 'pong' });
      case 'unsubscribe':
        return void (m.stream === '*' ? c.subs.clear() : c.subs.delete(m.stream));
      case 'subscribe':
        return subscribe(c, m.stream);
      case 'subscribe-jobs':
        c.jobs = true;
        for (const job of jobs?.list() ?? []) c.send({ type: 'job', job });
        return;
      case 'unsubscribe-jobs':
        c.jobs = false;
    }
  };

  wss.on('connection', (ws: WebSocket) => {
    const c = createClient(ws, nextId++, { maxBufferedBytes, maxQueue }, totals);
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
      c.clear();
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

  return {
    handleUpgrade(req, socket, head) {
      // Node hands the socket over without an error listener: a client that resets it (while it
      // is refused below, or during the handshake) would otherwise end the process.
      socket.on('error', () => socket.destroy());
      const refused = upgradeRefusal(req, { path, auth, vetUpgrade });
      if (refused) {
        totals.rejectedUpgrades++;
        return refuseUpgrade(socket, refused);
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    },
    stats() {
      let queueDepth = 0;
      let bufferedBytes = 0;
      for (const c of clients) {
        queueDepth += c.queued;
        bufferedBytes += c.ws.bufferedAmount;
      }
      return { clients: clients.size, queueDepth, bufferedBytes, ...totals };
    },
    clientStats: () => [...clients].map((c) => c.stats()),
    async close() {
      clearInterval(heartbeat);
      unsubscribeEngine();
      unsubscribeJobs?.();
      for (const c of clients) c.ws.terminate();
      clients.clear();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
