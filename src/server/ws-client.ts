/**
 * One WebSocket client's bounded send queue. Messages go to the socket only while
 * `ws.bufferedAmount` is under `maxBufferedBytes`; beyond that they wait in a queue of at most
 * `maxQueue` messages, and when that is full the OLDEST prediction is dropped and counted, and
 * the client is told with `{type:'dropped', stream, count}` as soon as it has room again. So a
 * slow client costs at most maxBufferedBytes + maxQueue messages of memory and never slows the
 * pipeline or anyone else.
 *
 * @example
 *   const client = createClient(ws, 1, { maxBufferedBytes: 1 << 20, maxQueue: 32 }, totals);
 *   client.enqueue({ data: JSON.stringify(prediction), stream: prediction.stream });
 */
import { WebSocket } from 'ws';

export interface Queued {
  data: string;
  /** Set for predictions: only they may be dropped. */
  stream?: string;
}

export interface ClientLimits {
  /** Bytes a client may have in flight in the socket before messages queue. */
  maxBufferedBytes: number;
  /** Messages a client may have queued before its oldest predictions are dropped. */
  maxQueue: number;
}

/** Counts over every client, for /metrics. */
export interface SendTotals {
  messagesSent: number;
  framesDropped: number;
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

export interface Client {
  readonly id: number;
  readonly ws: WebSocket;
  /** Stream ids (or *) whose messages it receives. */
  readonly subs: Set<string>;
  /** Whether it receives the jobs' messages. */
  jobs: boolean;
  /** Answered since the last heartbeat. */
  alive: boolean;
  enqueue(item: Queued): void;
  /** Queues a message that is never dropped. */
  send(message: object): void;
  /** Messages waiting. */
  readonly queued: number;
  stats(): ClientStats;
  /** Drops what is queued (the socket closed). */
  clear(): void;
}

export function createClient(ws: WebSocket, id: number, limits: ClientLimits, totals: SendTotals): Client {
  const queue: Queued[] = [];
  /** Predictions dropped per stream and not yet reported. */
  const unreported = new Map<string, number>();
  let queuedBytes = 0;
  let sent = 0;
  let dropped = 0;

  const next = (): string | undefined => {
    if (unreported.size) {
      const [stream, count] = unreported.entries().next().value as [string, number];
      unreported.delete(stream);
      return JSON.stringify({ type: 'dropped', stream, count });
    }
    const item = queue.shift();
    if (item) queuedBytes -= item.data.length;
    return item?.data;
  };

  const pump = () => {
    while (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < limits.maxBufferedBytes) {
      const data = next();
      if (data === undefined) return;
      sent++;
      totals.messagesSent++;
      // The callback fires once the data left the process: room for the next message.
      ws.send(data, () => pump());
    }
  };

  const dropOldest = () => {
    let i = queue.findIndex((q) => q.stream !== undefined);
    if (i < 0) i = 0;
    const [old] = queue.splice(i, 1);
    queuedBytes -= old!.data.length;
    if (old!.stream === undefined) return;
    unreported.set(old!.stream, (unreported.get(old!.stream) ?? 0) + 1);
    dropped++;
    totals.framesDropped++;
  };

  const client: Client = {
    id,
    ws,
    subs: new Set(),
    jobs: false,
    alive: true,
    enqueue(item) {
      queue.push(item);
      queuedBytes += item.data.length;
      while (queue.length > limits.maxQueue) dropOldest();
      pump();
    },
    send: (message) => client.enqueue({ data: JSON.stringify(message) }),
    get queued() {
      return queue.length;
    },
    stats: () => ({ id, subscriptions: [...client.subs], queued: queue.length, queuedBytes, bufferedAmount: ws.bufferedAmount, sent, dropped }),
    clear() {
      queue.length = 0;
      queuedBytes = 0;
    },
  };
  return client;
}
