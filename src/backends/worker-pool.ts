/**
 * A pool of worker_threads, each with its own tfjs backend (wasm by default) and its own copy of
 * a model, so inference uses every core: wasm's own threads do not start in Node.
 *
 * A worker builds its model by importing `module` and calling its exported
 * `createWorkerModel(spec)`; `spec` must survive structured cloning (plain data and
 * ArrayBuffers, e.g. a config plus `snapshotParams(store)`). `predict` splits a batch along its
 * first axis across the workers and concatenates every output in input order.
 *
 * @example
 *   const pool = await createWorkerPool({ module: EXTRACTOR_WORKER_MODULE, spec: extractorWorkerSpec(fx, store), size: 2 });
 *   const { embedding } = await pool.predict({ data, shape: [16, 112, 112, 3] });
 *   await pool.close();
 */
import os from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from './index.js';

/** A dense float32 batch: shape[0] is the batch axis. */
export interface Batch {
  data: Float32Array;
  shape: number[];
}

/** What `createWorkerModel` returns inside a worker. */
export interface WorkerModel {
  predict(input: Batch): Record<string, Batch> | Promise<Record<string, Batch>>;
  dispose(): void;
}

/** The export a worker module must provide. */
export type CreateWorkerModel<Spec> = (spec: Spec) => WorkerModel | Promise<WorkerModel>;

export interface WorkerPoolOptions {
  /** Absolute path or file: URL of a module exporting `createWorkerModel`. */
  module: string;
  /** Structured-cloneable description of the model, passed to createWorkerModel. */
  spec: unknown;
  /** Number of workers; default: one per CPU core. */
  size: number;
  /** Backend each worker initialises (through initBackend). */
  backend: BackendName;
}

export interface WorkerPool {
  readonly size: number;
  predict(input: Batch): Promise<Record<string, Batch>>;
  /** Terminates every worker; pending predictions reject. */
  close(): Promise<void>;
}

/** The named variables of a model (a model/nn ParamStore). */
export interface VariableStore {
  readonly vars: ReadonlyMap<string, tf.Variable>;
}

/** Serialisable copy of every variable of a store, for sending weights to workers. */
export type ParamSnapshot = Record<string, { shape: number[]; data: ArrayBuffer }>;

export function snapshotParams(store: VariableStore): ParamSnapshot {
  const out: ParamSnapshot = {};
  for (const [name, v] of store.vars) {
    const data = v.dataSync() as Float32Array;
    out[name] = { shape: v.shape, data: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer };
  }
  return out;
}

/** Assigns a snapshot to a store of the same layout; every name and shape must match. */
export function restoreParams(store: VariableStore, snapshot: ParamSnapshot): void {
  const missing = [...store.vars.keys()].filter((n) => !(n in snapshot));
  const extra = Object.keys(snapshot).filter((n) => !store.vars.has(n));
  if (missing.length || extra.length) {
    throw new Error(`parameter snapshot does not match the model (missing: ${missing.slice(0, 5).join(', ') || '-'}; unexpected: ${extra.slice(0, 5).join(', ') || '-'})`);
  }
  for (const [name, v] of store.vars) {
    const { shape } = snapshot[name];
    if (shape.join() !== v.shape.join()) throw new Error(`parameter "${name}": shape [${shape}] does not match [${v.shape}]`);
  }
  for (const [name, v] of store.vars) {
    tf.tidy(() => v.assign(tf.tensor(new Float32Array(snapshot[name].data), snapshot[name].shape)));
  }
}

const DEFAULTS: Omit<WorkerPoolOptions, 'module' | 'spec'> = {
  size: Math.max(1, os.availableParallelism?.() ?? os.cpus().length),
  backend: 'wasm',
};

const TSX_API = import.meta.resolve('tsx/esm/api');

/** Marks workerData as ours, so importing this module elsewhere in a worker does nothing. */
const POOL_MARK = 'arbexWorkerPool';

type Request = { id: number; input: Batch };
type Reply = { id: number; output?: Record<string, Batch>; error?: { message: string; stack?: string } };
type Init = { ready: true } | { ready: false; error: { message: string; stack?: string } };

function toError(e: { message: string; stack?: string }): Error {
  const err = new Error(e.message);
  if (e.stack) err.stack = e.stack;
  return err;
}

/** Starts the workers and waits until each has built its model (or rejects with the first error). */
export async function createWorkerPool(options: Pick<WorkerPoolOptions, 'module' | 'spec'> & Partial<WorkerPoolOptions>): Promise<WorkerPool> {
  const opts = { ...DEFAULTS, ...options };
  if (!Number.isInteger(opts.size) || opts.size < 1) throw new Error(`worker pool size must be a positive integer (got ${opts.size})`);
  const moduleUrl = opts.module.startsWith('file:') ? opts.module : new URL(`file://${opts.module}`).href;

  interface Slot {
    worker: Worker;
    pending: Map<number, { resolve: (r: Record<string, Batch>) => void; reject: (e: Error) => void }>;
    dead?: Error;
  }
  let nextId = 0;
  let closed = false;
  let turn = 0;

  const slots: Slot[] = [];
  const ready: Promise<void>[] = [];
  for (let i = 0; i < opts.size; i++) {
    // Node 20 does not apply `--import tsx` from a worker's execArgv before loading its entry
    // (measured: ERR_UNKNOWN_FILE_EXTENSION), so the entry is a script that registers tsx's
    // loader itself and then imports this file. execArgv stays for Node versions that honour it.
    const entry = `import(${JSON.stringify(TSX_API)}).then((t) => { t.register(); return import(${JSON.stringify(import.meta.url)}); })`;
    const worker = new Worker(entry, {
      eval: true,
      workerData: { [POOL_MARK]: true, module: moduleUrl, spec: opts.spec, backend: opts.backend },
      execArgv: ['--import', 'tsx'],
    });
    const slot: Slot = { worker, pending: new Map() };
    slots.push(slot);
    const fail = (err: Error) => {
      slot.dead ??= err;
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    };
    ready.push(
      new Promise<void>((resolve, reject) => {
        worker.once('message', (m: Init) => (m.ready ? resolve() : reject(toError(m.error))));
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before its model was ready`)));
      }).then(() => {
        worker.on('message', (m: Reply) => {
          const p = slot.pending.get(m.id);
          if (!p) return;
          slot.pending.delete(m.id);
          if (slot.pending.size === 0) worker.unref();
          if (m.error) p.reject(toError(m.error));
          else p.resolve(m.output!);
        });
      }),
    );
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(closed ? 'worker pool closed' : `worker exited with code ${code}`)));
  }

  const close = async () => {
    closed = true;
    await Promise.all(slots.map((s) => s.worker.terminate()));
  };
  try {
    await Promise.all(ready);
  } catch (e) {
    await close();
    throw e;
  }
  // Idle workers must not keep the process alive; a worker with pending work is ref'ed.
  for (const s of slots) s.worker.unref();

  function run(slot: Slot, input: Batch): Promise<Record<string, Batch>> {
    if (closed) return Promise.reject(new Error('worker pool closed'));
    if (slot.dead) return Promise.reject(slot.dead);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.ref();
      slot.worker.postMessage({ id, input } satisfies Request);
    });
  }

  async function predict(input: Batch): Promise<Record<string, Batch>> {
    const [n, ...rest] = input.shape;
    const per = rest.reduce((a, b) => a * b, 1);
    if (!Number.isInteger(n) || n < 1 || input.data.length !== n * per) {
      throw new Error(`predict: data length ${input.data.length} does not match shape [${input.shape}]`);
    }
    const parts = Math.min(slots.length, n);
    const chunk = Math.ceil(n / parts);
    const jobs: Promise<Record<string, Batch>>[] = [];
    for (let start = 0; start < n; start += chunk) {
      const count = Math.min(chunk, n - start);
      // postMessage copies the data anyway: a batch that goes whole to one worker is not sliced first.
      const data = parts === 1 ? input.data : input.data.slice(start * per, (start + count) * per);
      jobs.push(run(slots[turn++ % slots.length], { data, shape: [count, ...rest] }));
    }
    const results = await Promise.all(jobs);
    if (results.length === 1) return results[0];
    const out: Record<string, Batch> = {};
    for (const key of Object.keys(results[0])) {
      const pieces = results.map((r) => r[key]);
      const data = new Float32Array(pieces.reduce((a, p) => a + p.data.length, 0));
      let offset = 0;
      for (const p of pieces) {
        data.set(p.data, offset);
        offset += p.data.length;
      }
      out[key] = { data, shape: [pieces.reduce((a, p) => a + p.shape[0], 0), ...pieces[0].shape.slice(1)] };
    }
    return out;
  }

  return { size: slots.length, predict, close };
}

/** Worker side: build the model, then answer requests one at a time. */
async function serve(data: { module: string; spec: unknown; backend: BackendName }): Promise<void> {
  const port = parentPort!;
  const errorOf = (e: unknown) => ({ message: (e as Error)?.message ?? String(e), stack: (e as Error)?.stack });
  let model: WorkerModel;
  try {
    const { initBackend } = await import('./index.js');
    await initBackend(data.backend, { log: false });
    const mod = (await import(data.module)) as { createWorkerModel?: CreateWorkerModel<unknown> };
    if (typeof mod.createWorkerModel !== 'function') throw new Error(`${data.module} does not export createWorkerModel`);
    model = await mod.createWorkerModel(data.spec);
  } catch (e) {
    port.postMessage({ ready: false, error: errorOf(e) } satisfies Init);
    return;
  }
  port.postMessage({ ready: true } satisfies Init);
  let queue = Promise.resolve();
  port.on('message', (req: Request) => {
    queue = queue.then(async () => {
      try {
        const output = await model.predict(req.input);
        port.postMessage({ id: req.id, output } satisfies Reply);
      } catch (e) {
        port.postMessage({ id: req.id, error: errorOf(e) } satisfies Reply);
      }
    });
  });
}

if (!isMainThread && (workerData as Record<string, unknown> | null)?.[POOL_MARK]) {
  void serve(workerData as { module: string; spec: unknown; backend: BackendName });
}
