/**
 * A running source: frames as an async iterator, with the two flow-control policies the
 * pipeline needs and reconnection for live sources.
 *
 * - Files (and anything opened with `live: false`) lose nothing: when the consumer is
 *   `queueSize` frames behind, stdout is no longer read, so ffmpeg blocks and decoding waits.
 * - Live sources cannot wait (the camera does not pause): at most `queueSize` frames are kept
 *   and the OLDEST are dropped and counted, so the consumer always gets the freshest picture.
 *   They reconnect with capped exponential backoff when the stream ends, stalls or ffmpeg dies.
 */
import { createFrameChannel } from './channel.js';
import { startDecode, type DecodeSession, type SourceInfo } from './decode.js';
import { createSourceGuard, type GuardRoute } from './guard.js';
import { decodeConfig, reconnectDelay, resolveIngestOptions } from './options.js';
import { createAddressPolicy, type NetworkPolicy } from './policy.js';
import { redact } from './redact.js';
import { SourceError, type Source } from './source.js';
import { afterExit, afterStall, type Next } from './transitions.js';

/** One decoded video frame: packed RGB, row-major, width*height*3 bytes. */
export interface Frame {
  /** Source frame index: for files, frame N of the file (0-based). */
  index: number;
  /** Presentation time in milliseconds from the start of the source. */
  ptsMs: number;
  width: number;
  height: number;
  data: Uint8Array;
}

export type IngestState = 'connecting' | 'live' | 'stalled' | 'reconnecting' | 'ended' | 'failed';

export interface StateEvent {
  state: IngestState;
  /** The source string as given to parseSource. */
  source: string;
  /** Wall-clock time of the change (ms since epoch). */
  at: number;
  /** Why: set on stalled, reconnecting and failed. It may quote the source: `redact` it before it leaves the server. */
  error?: string;
  /**
   * For logs, not for clients: what really happened when `error` is the uniform "could not
   * connect" of a network source (connection refused, timed out, ffmpeg's diagnosis...).
   */
  detail?: string;
  /** Reconnect attempt number (connecting, reconnecting). */
  attempt?: number;
  /** Wait before the next attempt (reconnecting). */
  delayMs?: number;
}

export interface IngestStats {
  /** Frames received from ffmpeg. */
  framesIn: number;
  /** Frames handed to the consumer. */
  framesOut: number;
  /** Frames discarded because the consumer was behind (live sources only). */
  drops: number;
  reconnects: number;
  state: IngestState;
  lastError?: string;
}

export interface ReconnectOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
  /** Consecutive failed attempts before giving up with `failed` (Infinity: never give up). */
  maxAttempts: number;
}

export interface IngestOptions {
  /** ffmpeg binary (e.g. `readSettings().ffmpegPath`); defaults to `defaultFfmpeg()` (a newer system one, else the bundled one). */
  ffmpegPath?: string;
  /** Keep the aspect ratio with the longer side at most this (never upscaled). */
  maxSide?: number;
  /** Exact output size instead of `maxSide`. */
  size?: { width: number; height: number };
  /** Output frame rate; undefined keeps every source frame. Indices stay source indices. */
  fps?: number;
  /** Drop-oldest flow and reconnects; default true for network and camera sources, false for files. */
  live?: boolean;
  /** Files: deliver at native speed (ffmpeg `-re`), e.g. to replay a recording as a camera. */
  realtime?: boolean;
  /** Files: start over at the end, forever. */
  loop?: boolean;
  /** Files: fail on corrupt data rather than skip it. */
  strict?: boolean;
  /** Frames buffered for the consumer: the drop threshold (live) or the pause threshold (files). */
  queueSize?: number;
  rtspTransport?: 'tcp' | 'udp';
  /** Live: no frame for this long counts as a stall (also bounds the time to the first frame). */
  stallTimeoutMs?: number;
  reconnect?: Partial<ReconnectOptions>;
  /** Time ffmpeg gets to exit after SIGTERM before SIGKILL. */
  stopGraceMs?: number;
  /**
   * Network sources: the addresses they may reach (policy.ts), enforced on every connection ffmpeg
   * makes, redirects included (guard.ts). Default: not loopback, link-local, metadata or unspecified.
   */
  network?: Partial<NetworkPolicy>;
  /** Called on every state change, starting with the first `connecting`. */
  onState?: (event: StateEvent) => void;
}

export interface IngestSource {
  readonly source: Source;
  /** The frames, once; breaking out of the loop stops the source. Throws the error if it failed. */
  frames(): AsyncIterableIterator<Frame>;
  stats(): IngestStats;
  /** Native codec, size and rate once ffmpeg has reported them. */
  info(): SourceInfo | undefined;
  /** Stops and waits until no ffmpeg process of this source is left. Ends in `ended`. */
  stop(): Promise<void>;
  /** Settles when the source is over: resolves on `ended`, rejects on `failed`. */
  done(): Promise<void>;
}

/**
 * Starts decoding a source (from `parseSource`) right away.
 *
 * @example
 * const src = openSource(parseSource('rtsp://cam/stream', { mediaDirs }), { maxSide: 320, fps: 10,
 *   onState: (e) => console.log(e.state, e.error ?? '') });
 * for await (const frame of src.frames()) handle(frame); // frame.index, frame.ptsMs, frame.data
 */
export function openSource(source: Source, options: IngestOptions = {}): IngestSource {
  const { o, backoff } = resolveIngestOptions(source, options);

  // Network sources reach the network only through a guard that checks every destination.
  const guard =
    source.kind === 'rtsp' || source.kind === 'http'
      ? createSourceGuard(source, { policy: createAddressPolicy(options.network), rtspTransport: o.rtspTransport })
      : undefined;
  // One message for every failure to reach a network source, so that clients cannot tell a closed
  // port from an open one that speaks something else; the difference goes to `detail`.
  const unreachable = `could not connect to ${redact(source.input)}`;

  const openedAt = performance.now();
  const stats: IngestStats = { framesIn: 0, framesOut: 0, drops: 0, reconnects: 0, state: 'connecting' };
  let info: SourceInfo | undefined;
  let failure: Error | undefined;
  let finalState = false;

  let session: DecodeSession | undefined;
  const killing = new Set<Promise<void>>();
  let attempt = 0;
  let connections = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let stallTimer: NodeJS.Timeout | undefined;

  // Index continuity across reconnects (live): each connection restarts ffmpeg's count.
  let indexBase = 0;
  let connectionFrames = 0;

  // Back-pressure (files) or drop-oldest (live) between the session and the consumer.
  const channel = createFrameChannel<Frame>({
    live: o.live,
    queueSize: o.queueSize,
    counters: stats,
    pause: () => session?.pause(),
    resume: () => session?.resume(),
  });
  let doneWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  function setState(state: IngestState, extra: Omit<StateEvent, 'state' | 'source' | 'at'> = {}): void {
    stats.state = state;
    if (extra.error !== undefined) stats.lastError = extra.error;
    o.onState?.({ state, source: source.input, at: Date.now(), ...extra });
  }

  function settle(): void {
    finalState = true;
    void guard?.close();
    clearTimeout(reconnectTimer);
    clearTimeout(stallTimer);
    channel.close(failure);
    for (const d of doneWaiters) (failure ? d.reject(failure) : d.resolve());
    doneWaiters = [];
  }

  function fail(error: Error, detail?: string): void {
    failure = error;
    setState('failed', { error: error.message, ...(detail ? { detail } : {}) });
    settle();
  }

  function armStallTimer(): void {
    if (!o.live) return;
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => {
      const guarded = guard !== undefined;
      const { stalled, next } = afterStall({ stallTimeoutMs: o.stallTimeoutMs, guarded, hadFrames: connectionFrames > 0, refusal: guard?.outcome().refusal, unreachable });
      setState('stalled', stalled);
      dropSession();
      follow(next);
    }, o.stallTimeoutMs);
  }

  function follow(next: Next): void {
    if (next.to === 'reconnecting') return scheduleReconnect(next.error, next.detail);
    clearTimeout(stallTimer);
    if (next.to === 'failed') return fail(next.error, next.detail);
    setState('ended');
    settle();
  }

  function dropSession(): void {
    if (!session) return;
    const p = session.kill(o.stopGraceMs);
    killing.add(p);
    void p.then(() => killing.delete(p));
    session = undefined;
    indexBase += connectionFrames;
  }

  function scheduleReconnect(error: Error, detail?: string): void {
    attempt++;
    if (attempt > backoff.maxAttempts) return fail(error, detail);
    const delayMs = reconnectDelay(attempt, backoff);
    setState('reconnecting', { error: error.message, ...(detail ? { detail } : {}), attempt, delayMs });
    stats.reconnects++;
    reconnectTimer = setTimeout(connect, delayMs);
  }

  function connect(): void {
    setState('connecting', attempt > 0 ? { attempt } : {});
    connectionFrames = 0;
    channel.restarted();
    armStallTimer();
    if (!guard) return startSession(undefined);
    const connection = ++connections;
    guard.open().then(
      (route) => {
        if (!finalState && connection === connections) startSession(route);
      },
      (e: Error) => {
        if (finalState || connection !== connections) return;
        clearTimeout(stallTimer);
        if (e instanceof SourceError) fail(e);
        else scheduleReconnect(new Error(unreachable), e.message);
      },
    );
  }

  function startSession(route: GuardRoute | undefined): void {
    const current: DecodeSession = startDecode(decodeConfig(source, o, route), {
      onInfo: (i) => {
        info ??= i;
      },
      onFrame: (f) => {
        if (session !== current) return;
        if (connectionFrames === 0) {
          attempt = 0;
          setState('live');
        }
        connectionFrames = f.n + 1;
        armStallTimer();
        // Files: the file's own clock. Live: arrival time since open, because stream clocks
        // restart on every reconnect and jump when RTSP re-syncs on its first RTCP report.
        const ptsMs = o.live ? performance.now() - openedAt : (Number.isFinite(f.ptsSec) ? f.ptsSec : 0) * 1000;
        channel.push({ index: indexBase + f.n, ptsMs, width: f.width, height: f.height, data: f.data });
      },
      onExit: (error) => {
        if (session !== current) return;
        const hadFrames = connectionFrames > 0;
        session = undefined;
        indexBase += connectionFrames;
        const facts = { live: o.live, guarded: guard !== undefined, outcome: guard?.outcome(), hadFrames, error };
        follow(afterExit({ ...facts, framesIn: stats.framesIn, unreachable, input: source.input }));
      },
    });
    session = current;
  }

  async function stop(): Promise<void> {
    if (!finalState) {
      setState('ended');
      settle();
    }
    channel.clear();
    dropSession();
    await Promise.all([...killing, guard?.close()]);
  }

  connect();

  return {
    source,
    frames: () => channel.iterate(stop),
    stats: () => ({ ...stats }),
    info: () => info,
    stop,
    done() {
      if (finalState) return failure ? Promise.reject(failure) : Promise.resolve();
      return new Promise<void>((resolve, reject) => doneWaiters.push({ resolve, reject }));
    },
  };
}
