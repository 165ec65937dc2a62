/**
 * A local copy of a key-value bucket, kept current by a watch: every role reads the desired
 * streams, the leases, the workers and the jobs from here instead of asking NATS each time.
 *
 * Each entry carries `seenAt`, the local time at which this process first saw its revision.
 * Leases and worker heartbeats are judged on it ("not renewed for leaseMs"), so no two machines'
 * clocks are ever compared. After a reconnection `refresh()` restarts the watch and gives every
 * entry a fresh `seenAt`: nobody could renew while NATS was away, and that is nobody's fault.
 */
import { KvWatchInclude, type KV, type KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';

export interface MirrorEntry<T> {
  value: T;
  revision: number;
  /** Local Date.now() when this revision was first seen here. */
  seenAt: number;
}

export interface KvMirror<T> {
  /** Resolves once the bucket's current content has been read. */
  readonly ready: Promise<void>;
  get(key: string): MirrorEntry<T> | undefined;
  keys(): string[];
  entries(): [string, MirrorEntry<T>][];
  /** Records a write this process made, before the watch reports it. */
  set(key: string, value: T, revision: number): void;
  /** Forgets a key this process deleted. */
  forget(key: string): void;
  /** Restarts the watch and makes every entry fresh (after a reconnection). */
  refresh(): void;
  /** Called for every change: the key and its new entry, undefined when deleted. */
  onChange(listener: (key: string, entry: MirrorEntry<T> | undefined) => void): () => void;
  close(): void;
}

/**
 * @example
 * const streams = mirrorKv<DesiredStream>(r.streams);
 * await streams.ready;
 * for (const [id, { value }] of streams.entries()) console.log(id, value.source);
 */
export function mirrorKv<T>(kv: KV, decode: (e: KvWatchEntry) => T = (e) => e.json<T>()): KvMirror<T> {
  const map = new Map<string, MirrorEntry<T> & { gen: number }>();
  const listeners = new Set<(key: string, entry: MirrorEntry<T> | undefined) => void>();
  let gen = 0;
  let closed = false;
  let current: QueuedIterator<KvWatchEntry> | undefined;
  let markReady!: () => void;
  const ready = new Promise<void>((r) => (markReady = r));

  const emit = (key: string, entry: MirrorEntry<T> | undefined) => {
    for (const l of listeners) {
      try {
        l(key, entry);
      } catch (e) {
        console.error(`arbex: cluster mirror listener failed: ${(e as Error).message}`);
      }
    }
  };

  const apply = (e: KvWatchEntry, g: number) => {
    if (e.operation !== 'PUT') {
      if (map.delete(e.key)) emit(e.key, undefined);
      return;
    }
    const old = map.get(e.key);
    if (old && old.revision >= e.revision) {
      old.gen = g;
      return;
    }
    let value: T;
    try {
      value = decode(e);
    } catch {
      return; // not ours, or corrupt: ignored
    }
    const entry = { value, revision: e.revision, seenAt: Date.now(), gen: g };
    map.set(e.key, entry);
    emit(e.key, entry);
  };

  /** Drops what a restarted watch did not report again (deleted while it was away). */
  const sweep = (g: number) => {
    for (const [k, v] of map) {
      if (v.gen < g) {
        map.delete(k);
        emit(k, undefined);
      }
    }
    markReady();
  };

  const run = async () => {
    while (!closed) {
      const g = ++gen;
      try {
        const empty = (await kv.status()).values === 0;
        const iter = await kv.watch({ include: KvWatchInclude.LastValue });
        current = iter;
        let caughtUp = empty;
        if (empty) sweep(g);
        for await (const e of iter) {
          apply(e, g);
          if (!caughtUp && e.isUpdate) {
            caughtUp = true;
            sweep(g);
          }
        }
      } catch {
        // NATS away or the watch's consumer lost: start again below.
      }
      if (!closed) await new Promise((r) => setTimeout(r, 500));
    }
  };
  void run();

  return {
    ready,
    get: (key) => map.get(key),
    keys: () => [...map.keys()],
    entries: () => [...map.entries()],
    set(key, value, revision) {
      const old = map.get(key);
      if (old && old.revision >= revision) return;
      const entry = { value, revision, seenAt: Date.now(), gen };
      map.set(key, entry);
      emit(key, entry);
    },
    forget(key) {
      if (map.delete(key)) emit(key, undefined);
    },
    refresh() {
      const now = Date.now();
      for (const v of map.values()) v.seenAt = now;
      current?.stop();
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      closed = true;
      current?.stop();
      listeners.clear();
    },
  };
}
