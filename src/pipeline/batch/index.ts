/**
 * One micro-batcher shared by every stream that feeds a model: items from all streams queue in
 * FIFO order and go to `predict` in batches, so the model sees batches as large as the traffic
 * allows while no item waits longer than `maxWaitMs` before its batch starts (when idle).
 */

export interface BatcherOptions {
  /** Largest batch handed to `predict` (integer >= 1). */
  maxBatch?: number;
  /** Longest wait, after the first waiting item arrives, before a partial batch is flushed. */
  maxWaitMs?: number;
}

export interface BatchStats {
  /** Batches handed to `predict` (failed ones included). */
  batches: number;
  /** Batches whose `predict` threw or returned a wrong result. */
  failedBatches: number;
  /** Items handed to `predict`. */
  items: number;
  /** items / batches (0 before the first batch). */
  meanBatchSize: number;
  /** histogram[n] = number of batches of exactly n items; length maxBatch + 1, index 0 unused. */
  histogram: number[];
  /** Wall time of the last `predict` call and the mean over all calls, in milliseconds. */
  inferenceMs: { last: number; mean: number };
  /** Items waiting for a batch (not counting the batch in flight). */
  queueDepth: number;
  /** Items in the batch now running (0 when idle). */
  inFlight: number;
  closed: boolean;
}

export interface Batcher<T, R> {
  readonly options: Required<BatcherOptions>;
  /** Queues one item; resolves with its own result, or rejects with its batch's error. */
  submit(item: T): Promise<R>;
  stats(): BatchStats;
  /**
   * Rejects every waiting item with a BatcherClosedError, stops the timer, and refuses later
   * submits. The batch in flight (if any) still completes; the promise resolves once it has.
   */
  close(): Promise<void>;
}

/** The error waiting (and later) items get once the batcher is closed. */
export class BatcherClosedError extends Error {
  constructor() {
    super('batcher closed: the item was not run');
    this.name = 'BatcherClosedError';
  }
}

const DEFAULTS: Required<BatcherOptions> = { maxBatch: 16, maxWaitMs: 10 };

interface Waiting<T, R> {
  item: T;
  at: number;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/**
 * Creates a micro-batcher around a batch `predict`.
 *
 * A batch starts when `maxBatch` items are waiting, or `maxWaitMs` after the oldest waiting
 * item arrived, whichever comes first; one batch runs at a time. Items arriving meanwhile form
 * the next batches (up to `maxBatch` each, FIFO), and an item whose wait expired during the
 * running batch goes as soon as that batch ends. Results resolve in submit order, so each
 * stream sees its own results in the order it submitted them. A failing `predict` rejects only
 * its own batch.
 *
 * @example
 * const batcher = createBatcher((crops: Uint8Array[]) => model.predict(crops), { maxBatch: 16, maxWaitMs: 8 });
 * const prediction = await batcher.submit(crop); // from any stream
 */
export function createBatcher<T, R>(predict: (items: T[]) => Promise<R[]>, options: BatcherOptions = {}): Batcher<T, R> {
  const opts = { ...DEFAULTS, ...definedOnly(options) };
  if (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1) throw new RangeError(`maxBatch must be an integer >= 1 (got ${opts.maxBatch})`);
  if (typeof opts.maxWaitMs !== 'number' || !(opts.maxWaitMs >= 0) || !Number.isFinite(opts.maxWaitMs)) {
    throw new RangeError(`maxWaitMs must be a finite number >= 0 (got ${opts.maxWaitMs})`);
  }

  const queue: Waiting<T, R>[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let inFlight = 0;
  let closed = false;
  const counts = { batches: 0, failedBatches: 0, items: 0, lastMs: 0, totalMs: 0 };
  const histogram = new Array<number>(opts.maxBatch + 1).fill(0);

  function stopTimer(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  }

  // Decides what happens next; called on submit, on the timer, and when a batch ends.
  function pump(): void {
    if (running || closed) return;
    if (queue.length === 0) return stopTimer();
    const due = queue[0]!.at + opts.maxWaitMs - performance.now();
    if (queue.length >= opts.maxBatch || due <= 0) {
      stopTimer();
      running = run(queue.splice(0, opts.maxBatch));
      return;
    }
    timer ??= setTimeout(() => {
      timer = undefined;
      pump();
    }, Math.ceil(due));
  }

  async function run(batch: Waiting<T, R>[]): Promise<void> {
    inFlight = batch.length;
    counts.batches++;
    counts.items += batch.length;
    histogram[batch.length]!++;
    // Starting predict on a microtask means a synchronous throw is handled like a rejection and
    // the next batch can never start inside this call, before `running` is set.
    await null;
    const t0 = performance.now();
    try {
      const results = await predict(batch.map((w) => w.item));
      if (!Array.isArray(results) || results.length !== batch.length) {
        throw new Error(`predict returned ${Array.isArray(results) ? results.length : typeof results} results for a batch of ${batch.length}`);
      }
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch (e) {
      counts.failedBatches++;
      for (const w of batch) w.reject(e);
    } finally {
      counts.lastMs = performance.now() - t0;
      counts.totalMs += counts.lastMs;
      inFlight = 0;
      running = undefined;
      pump();
    }
  }

  return {
    options: opts,
    submit(item) {
      if (closed) return Promise.reject(new BatcherClosedError());
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, at: performance.now(), resolve, reject });
        pump();
      });
    },
    stats: () => ({
      batches: counts.batches,
      failedBatches: counts.failedBatches,
      items: counts.items,
      meanBatchSize: counts.batches ? counts.items / counts.batches : 0,
      histogram: [...histogram],
      inferenceMs: { last: counts.lastMs, mean: counts.batches ? counts.totalMs / counts.batches : 0 },
      queueDepth: queue.length,
      inFlight,
      closed,
    }),
    async close() {
      closed = true;
      stopTimer();
      const err = new BatcherClosedError();
      for (const w of queue.splice(0)) w.reject(err);
      await running;
    },
  };
}

/** Keeps `{ maxWaitMs: undefined }` from overriding a default when spread. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
