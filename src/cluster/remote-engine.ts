/**
 * The gateway's view of the cluster's streams, behind the `Engine` interface of the single
 * server, so the HTTP routes and the WebSocket hub serve cluster streams unchanged (same
 * routes, same message schema). Opening a stream writes its desired state to the `<prefix>-streams`
 * bucket; a worker claims it; its predictions, states and info come back on `<prefix>.pred.*`,
 * `<prefix>.state.*` and `<prefix>.info.*`, and frames by request on `<prefix>.frame.<id>`.
 *
 * When the worker running a stream dies, its lease goes stale and the stream's subscribers get a
 * `stream` message with state `reconnecting` saying so; the worker that takes it over then says
 * `connecting` and `live`. A stream no live worker can run says so in its info's `lastError`.
 */
import { randomUUID } from 'node:crypto';
import type { Msg, Subscription } from '@nats-io/transport-node';
import type { Settings } from '../env.js';
import { parseSource } from '../ingest/index.js';
import { createEmitter } from '../pipeline/events.js';
import type { Engine, EngineEvent, FrameOutput, StreamEvent, StreamHandle, StreamInfo, StreamOptions, StreamState } from '../pipeline/types.js';
import { holder } from './balance.js';
import { mirrorKv, type KvMirror } from './mirror.js';
import { decode, encode, trackConnection, type ClusterResources } from './nats.js';
import type { DesiredStream, InfoMessage, Lease, StateMessage, WorkerBeat } from './types.js';

export interface RemoteEngineOptions {
  resources: ClusterResources;
  /** Sources are checked here as the single server checks them, so a refused one is a 422 at once. */
  settings: Pick<Settings, 'mediaDirs'> & Partial<Pick<Settings, 'network'>>;
  leaseMs: number;
  /** Class names when no worker is live yet (read from the weights' config.json). */
  classes?: readonly string[];
  log?: (line: string) => void;
}

export interface ClusterWorkerView {
  id: string;
  host: string;
  capacity: number;
  /** Streams whose live lease it holds. */
  streams: number;
  jobs: number;
  /** Milliseconds since its last heartbeat was seen. */
  lastSeenMs: number;
}

export interface ClusterView {
  connected: boolean;
  reconnects: number;
  workers: ClusterWorkerView[];
  streams: number;
  /** Desired streams no live worker holds. */
  unassigned: number;
  predictionsIn: number;
  messagesInBytes: number;
}

export type RemoteEngine = Engine & {
  cluster(): ClusterView;
  /** Whether NATS is reachable now. */
  connected(): boolean;
};

const NO_WORKER = 'no worker is live: the stream runs when one joins';
const WAITING = 'waiting for a worker to take it';

/**
 * @example
 * const engine = await createRemoteEngine({ resources, settings, leaseMs: 4000 });
 * const server = createServer({ engine, settings, jobs: createClusterJobs({ resources }) });
 */
export async function createRemoteEngine(options: RemoteEngineOptions): Promise<RemoteEngine> {
  const { resources: r, settings, leaseMs, log = (l: string) => console.error(l) } = options;
  const { nc, names: n } = r;
  const desired = mirrorKv<DesiredStream>(r.streams);
  const leases = mirrorKv<Lease>(r.leases);
  const workers = mirrorKv<WorkerBeat>(r.workers);
  const mirrors = [desired, leases, workers] as KvMirror<unknown>[];
  const conn = trackConnection(nc, () => {
    for (const m of mirrors) m.refresh();
  });
  const handles = new Map<string, RemoteHandle>();
  const lastInfo = new Map<string, InfoMessage & { at: number }>();
  const lastState = new Map<string, StateMessage>();
  const lastHolder = new Map<string, string | undefined>();
  const counters = { predictionsIn: 0, messagesInBytes: 0 };
  /** Every stream's events, for the hub (it pushes them; nothing polls). */
  const events = createEmitter<EngineEvent>((e) => log(`arbex: engine listener failed: ${e.message}`));
  await Promise.all([desired.ready, leases.ready, workers.ready]);

  const liveWorkers = () => {
    const now = Date.now();
    return workers.entries().filter(([, e]) => now - e.seenAt < leaseMs);
  };
  const holderOf = (stream: string) => {
    const e = leases.get(stream);
    return holder(e && { worker: e.value.worker, revision: e.revision, seenAt: e.seenAt }, '', Date.now(), leaseMs);
  };

  interface RemoteHandle extends StreamHandle {
    emit(e: StreamEvent): void;
  }

  const makeHandle = (id: string): RemoteHandle => {
    const listeners = new Set<(e: StreamEvent) => void>();
    const handle: RemoteHandle = {
      id,
      emit(e) {
        for (const l of listeners) {
          try {
            l(e);
          } catch (err) {
            log(`arbex: stream ${id} listener failed: ${(err as Error).message}`);
          }
        }
        events.emit(e.type === 'output' ? e : { type: 'stream', info: handle.info(), ...(e.error ? { error: e.error } : {}) });
      },
      info(): StreamInfo {
        const d = desired.get(id)?.value;
        const h = holderOf(id);
        const info = lastInfo.get(id);
        if (d?.stopped) {
          const { at: _at, worker: _w, ...rest } = info ?? { at: 0, worker: '' };
          return { fpsIn: 0, fpsOut: 0, framesIn: 0, framesOut: 0, drops: 0, faces: 0, ...rest, id, name: d.name, source: d.source, startedAt: d.createdAt, state: 'stopped' } as StreamInfo;
        }
        if (info && info.worker === h && Date.now() - info.at < 5000) {
          const { at: _at, ...rest } = info;
          return { ...rest, id, name: d?.name ?? rest.name, source: d?.source ?? rest.source };
        }
        const state = lastState.get(id);
        const fromHolder = state && state.worker === h;
        const base: StreamInfo & { worker?: string } = {
          id,
          name: d?.name ?? id,
          source: d?.source ?? '',
          state: fromHolder ? state.state : h ? 'connecting' : lastHolder.get(id) === undefined && !state ? 'connecting' : 'reconnecting',
          fpsIn: 0,
          fpsOut: 0,
          framesIn: 0,
          framesOut: 0,
          drops: 0,
          faces: 0,
          startedAt: d?.createdAt ?? new Date().toISOString(),
        };
        if (h) base.worker = h;
        if (fromHolder && state.error) base.lastError = state.error;
        if (!h) base.lastError = liveWorkers().length ? WAITING : NO_WORKER;
        return base;
      },
      async latestJpeg() {
        try {
          const reply = await nc.request(n.frame(id), new Uint8Array(0), { timeout: 2000 });
          return reply.data.length ? Buffer.from(reply.data) : undefined;
        } catch {
          return undefined; // no worker runs it (no responders) or it did not answer in time
        }
      },
      subscribe(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      async stop() {
        // Kept, marked stopped: the worker running it lets it go; DELETE removes it (removeStream).
        const entry = desired.get(id);
        if (!handles.has(id) || !entry || entry.value.stopped) return;
        const d = { ...entry.value, stopped: true };
        const revision = await r.streams.put(id, encode(d));
        desired.set(id, d, revision);
        handle.emit({ type: 'state', stream: id, state: 'stopped' });
      },
    };
    return handle;
  };

  const ensure = (id: string) => {
    let h = handles.get(id);
    if (!h) {
      h = makeHandle(id);
      handles.set(id, h);
      events.emit({ type: 'stream', info: h.info() });
    }
    return h;
  };
  /** A desired stream deleted (here or by another gateway): its subscribers hear `stopped`. */
  const gone = (id: string) => {
    const h = handles.get(id);
    handles.delete(id);
    desired.forget(id);
    lastInfo.delete(id);
    lastState.delete(id);
    lastHolder.delete(id);
    h?.emit({ type: 'state', stream: id, state: 'stopped' });
    if (h) events.emit({ type: 'removed', stream: id });
  };

  for (const id of desired.keys()) ensure(id);
  desired.onChange((id, entry) => (entry ? ensure(id) : gone(id)));

  const streamOf = (msg: Msg) => msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
  const subs: Subscription[] = [
    nc.subscribe(n.wildcard('pred'), {
      callback: (err, msg) => {
        if (err) return;
        const h = handles.get(streamOf(msg));
        counters.messagesInBytes += msg.data.length;
        if (!h) return;
        counters.predictionsIn++;
        h.emit({ type: 'output', output: decode<FrameOutput>(msg.data) });
      },
    }),
    nc.subscribe(n.wildcard('state'), {
      callback: (err, msg) => {
        if (err) return;
        const id = streamOf(msg);
        const h = handles.get(id);
        counters.messagesInBytes += msg.data.length;
        if (!h) return;
        const s = decode<StateMessage>(msg.data);
        lastState.set(id, s);
        h.emit({ type: 'state', stream: id, state: s.state, ...(s.error ? { error: s.error } : {}) });
      },
    }),
    nc.subscribe(n.wildcard('info'), {
      callback: (err, msg) => {
        if (err) return;
        const id = streamOf(msg);
        counters.messagesInBytes += msg.data.length;
        if (!handles.has(id)) return;
        lastInfo.set(id, { ...decode<InfoMessage>(msg.data), at: Date.now() });
        events.emit({ type: 'stream', info: handles.get(id)!.info() });
      },
    }),
  ];

  // A worker that stops renewing: its streams' subscribers are told of the gap at once.
  const watchHolders = setInterval(() => {
    for (const id of handles.keys()) {
      const h = holderOf(id);
      const before = lastHolder.get(id);
      lastHolder.set(id, h);
      // A lease deleted was handed over (its worker said why); one left to go stale means a dead worker.
      if (before !== undefined && h === undefined && leases.get(id) !== undefined) {
        const state: StreamState = 'reconnecting';
        const error = `worker ${before} stopped answering; the stream moves to another worker`;
        lastState.set(id, { stream: id, state, error, worker: before });
        handles.get(id)!.emit({ type: 'state', stream: id, state, error });
      }
    }
  }, Math.max(100, leaseMs / 8));
  watchHolders.unref();

  const engine: RemoteEngine = {
    get classes() {
      const beat = liveWorkers()[0]?.[1].value;
      return beat?.classes ?? options.classes ?? [];
    },
    openStream(source: string, streamOptions: StreamOptions = {}) {
      // Refused sources are refused here, as by the single server (the worker checks again with its own settings).
      parseSource(source, { mediaDirs: settings.mediaDirs, network: settings.network });
      if (!conn.up) throw new Error('the cluster is unreachable (NATS is disconnected); try again shortly');
      const id = randomUUID();
      const d: DesiredStream = { id, source, name: streamOptions.name ?? source, createdAt: new Date().toISOString() };
      if (streamOptions.fps !== undefined) d.fps = streamOptions.fps;
      if (streamOptions.smoothing) d.smoothing = streamOptions.smoothing;
      if (streamOptions.loop) d.loop = true;
      desired.set(id, d, 0);
      const handle = ensure(id);
      r.streams.create(id, encode(d)).catch((e: Error) => {
        log(`arbex: could not store stream ${id} in NATS: ${e.message}`);
        lastState.set(id, { stream: id, state: 'failed', error: `could not be stored in the cluster: ${e.message}`, worker: '' });
        handle.emit({ type: 'state', stream: id, state: 'failed', error: `could not be stored in the cluster: ${e.message}` });
        gone(id);
      });
      return handle;
    },
    streams: () => [...handles.values()],
    async removeStream(id) {
      if (!handles.has(id)) return false;
      await r.streams.delete(id);
      gone(id);
      return true;
    },
    subscribe: events.subscribe,
    // eslint-disable-next-line require-yield
    async *labelVideo() {
      throw new Error('a gateway does not label videos itself: submit a job (POST /api/jobs)');
    },
    metrics() {
      const view = engine.cluster();
      // The cluster's own figures are added by the gateway as arbex_cluster_* (gateway.ts).
      return { streams: view.streams };
    },
    cluster() {
      const now = Date.now();
      const per = new Map<string, number>();
      let unassigned = 0;
      for (const id of handles.keys()) {
        if (desired.get(id)?.value.stopped) continue;
        const h = holderOf(id);
        if (h === undefined) unassigned++;
        else per.set(h, (per.get(h) ?? 0) + 1);
      }
      const list: ClusterWorkerView[] = liveWorkers().map(([id, e]) => ({
        id,
        host: e.value.host,
        capacity: e.value.capacity,
        streams: per.get(id) ?? 0,
        jobs: e.value.jobs,
        lastSeenMs: now - e.seenAt,
      }));
      return { connected: conn.up, reconnects: conn.reconnects, workers: list, streams: handles.size, unassigned, ...counters };
    },
    connected: () => conn.up,
    async close() {
      clearInterval(watchHolders);
      for (const s of subs) s.unsubscribe();
      for (const m of mirrors) m.close();
    },
  };
  return engine;
}
