/**
 * The frames between a decode session and its consumer, with the two flow-control policies:
 * - not live (files): nothing is lost; at `queueSize` frames waiting, the session is paused (ffmpeg
 *   blocks on its next write) until the consumer takes one;
 * - live: at most `queueSize` frames wait; the OLDEST are dropped and counted.
 * Once closed, a waiting consumer gets the end, or the failure (thrown once).
 */
export interface ChannelCounters {
  /** Frames pushed. */
  framesIn: number;
  /** Frames handed to the consumer. */
  framesOut: number;
  /** Frames dropped because the consumer was behind (live only). */
  drops: number;
}

export interface FrameChannelOptions {
  live: boolean;
  queueSize: number;
  /** Counted here (the source's stats object). */
  counters: ChannelCounters;
  /** Stop reading from the producer (not live, the queue is full). */
  pause(): void;
  /** Read again (not live, the consumer caught up). */
  resume(): void;
}

export interface FrameChannel<T> {
  push(frame: T): void;
  next(): Promise<IteratorResult<T>>;
  /** A new producer starts unpaused. */
  restarted(): void;
  /** No more frames: what is queued is still given, then the end or `failure`. */
  close(failure?: Error): void;
  /** Forgets the queued frames. */
  clear(): void;
  /** The consumer's iterator, once; breaking out of the loop calls `stop`. */
  iterate(stop: () => Promise<void>): AsyncIterableIterator<T>;
}

export function createFrameChannel<T>(o: FrameChannelOptions): FrameChannel<T> {
  const queue: T[] = [];
  const counters = o.counters;
  let paused = false;
  let closed = false;
  let failure: Error | undefined;
  let failureThrown = false;
  let iterated = false;
  let waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: Error) => void } | undefined;

  /** Resolves a waiting consumer with the end (or error) once nothing is left to give. */
  function wake(): void {
    const w = waiter!;
    waiter = undefined;
    if (failure && !failureThrown) {
      // Thrown once; a later next() just reports the end.
      failureThrown = true;
      w.reject(failure);
    } else {
      w.resolve({ value: undefined, done: true });
    }
  }

  const channel: FrameChannel<T> = {
    push(frame) {
      counters.framesIn++;
      if (waiter) {
        counters.framesOut++;
        const w = waiter;
        waiter = undefined;
        w.resolve({ value: frame, done: false });
        return;
      }
      queue.push(frame);
      if (o.live) {
        while (queue.length > o.queueSize) {
          queue.shift();
          counters.drops++;
        }
      } else if (queue.length >= o.queueSize && !paused) {
        paused = true;
        o.pause();
      }
    },
    next() {
      if (queue.length > 0) {
        const frame = queue.shift()!;
        counters.framesOut++;
        if (paused && queue.length < o.queueSize) {
          paused = false;
          o.resume();
        }
        return Promise.resolve({ value: frame, done: false });
      }
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject };
        if (closed) wake();
      });
    },
    restarted() {
      paused = false;
    },
    close(error) {
      closed = true;
      failure = error;
      if (waiter && queue.length === 0) wake();
    },
    clear() {
      queue.length = 0;
    },
    iterate(stop) {
      if (iterated) throw new Error('frames() can only be iterated once per source');
      iterated = true;
      return {
        next: () => channel.next(),
        async return(): Promise<IteratorResult<T>> {
          await stop();
          return { value: undefined, done: true };
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      };
    },
  };
  return channel;
}
