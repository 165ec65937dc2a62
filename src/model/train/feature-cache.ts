/**
 * The feature cache of a frozen backbone. With `freeze: "backbone"` the extractor's output for an
 * image never changes, so it is computed once per image (and once for its horizontal mirror, for
 * flip augmentation) and read from disk afterwards:
 *
 *   <dir>/<key>/features.bin   float32, [images, 2, D]: each image's embedding, then its mirror's
 *   <dir>/<key>/index.json     { format, version, key, count, dim, byteLength, sha256, parts, seconds }
 *
 * key = SHA-256 of
 *   - the extractor: name, dtype, shape and values of every `extractor.` variable of the store
 *     (BatchNorm statistics included), sorted by name;
 *   - the preprocessing: the model's extractor config (inputSize, normalisation, ...), its crop
 *     template, and the rule pixels follow to the extractor (PREPROCESSING, versioned);
 *   - the data set: every record (path and byte span, in the reader's order) and the size and
 *     modification time (ns) of every file they come from.
 * Any change to one of them gives another key, hence a miss and a fresh build. The extractor is
 * used only through `model.embed`, so the cache works for any extractor kind.
 *
 * Both files are written atomically (temporary file + rename), index.json last. On a read the
 * index must name this key, count and width, and features.bin must have the exact byte length
 * and SHA-256 the index records; otherwise the cache is rebuilt, never used.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Arbex } from '../arbex.js';
import { createAugmenter } from '../data/augment.js';
import { createBatchLoader } from '../data/loader.js';
import type { DataRecord, Dataset } from '../data/types.js';
import { INFER } from '../nn/layers.js';
import type { Progress } from './progress.js';

export interface FeatureCacheOptions {
  /** Only embed, config and the store's `extractor.` variables are used. */
  model: Pick<Arbex, 'embed' | 'config' | 'store'>;
  dataset: Pick<Dataset, 'records' | 'load'>;
  /** Root folder; this cache lives in `<dir>/<key>/`. */
  dir: string;
  /** Images per extractor call while building (each goes with its mirror). */
  batchSize: number;
  /** The data set's role in log lines (train, val, test). */
  name: string;
  log: (line: string) => void;
  progress?: Progress;
  /**
   * Worker threads that build a missing cache (each with its own copy of the extractor); 0
   * builds in this thread. The embeddings are the same either way.
   */
  workers?: number;
}

export interface FeatureCache {
  readonly key: string;
  /** `<dir>/<key>`. */
  readonly path: string;
  /** Distinct images cached. */
  readonly count: number;
  /** D, the embedding width. */
  readonly dim: number;
  /** Whether the embeddings came from disk (false: computed now). */
  readonly hit: boolean;
  /**
   * Embeddings of `records` as one [records.length, D] row-major array; `mirrored[i]` picks the
   * embedding of record i's horizontal mirror.
   */
  gather(records: readonly DataRecord[], mirrored?: readonly boolean[]): Float32Array;
}

const VERSION = 1;
/** How an image's pixels reach the extractor; a change here must bump VERSION. */
const PREPROCESSING =
  "dataset.load(record, inputSize), then createAugmenter({ size: inputSize }).eval (createBatchLoader's evaluation path); mirror = those pixels reversed along the width";
const FEATURES_FILE = 'features.bin';
const INDEX_FILE = 'index.json';

interface Index {
  format: 'arbex-features';
  version: number;
  key: string;
  count: number;
  dim: number;
  byteLength: number;
  sha256: string;
  parts: { extractor: string; preprocessing: unknown; data: string };
  seconds: number;
}

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

/** A record's identity: its path, and its byte span for an image stored in a row of a text file. */
function recordId(r: DataRecord): string {
  return r.span ? `${r.path}@${r.span.offset}+${r.span.length}` : r.path;
}

/** The file a record's pixels come from (`<file>:<line>` names a row of `<file>`). */
function sourceFile(r: DataRecord): string {
  return r.span ? r.path.slice(0, r.path.lastIndexOf(':')) : r.path;
}

/** SHA-256 of every `extractor.` variable: name, dtype, shape and values, sorted by name. */
export function extractorDigest(store: Arbex['store']): string {
  const hash = createHash('sha256');
  for (const name of [...store.vars.keys()].filter((n) => n.startsWith('extractor.')).sort()) {
    const v = store.vars.get(name)!;
    const values = v.dataSync();
    hash.update(`${name}\0${v.dtype}\0${v.shape.join(',')}\0`);
    hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return hash.digest('hex');
}

/** The data set's distinct records in reader order, and a digest of them and their files. */
async function datasetIdentity(dataset: FeatureCacheOptions['dataset']): Promise<{ records: DataRecord[]; digest: string }> {
  const records: DataRecord[] = [];
  const seen = new Set<string>();
  const files = new Set<string>();
  const hash = createHash('sha256');
  for await (const r of dataset.records()) {
    const id = recordId(r);
    if (seen.has(id)) continue;
    seen.add(id);
    records.push(r);
    files.add(sourceFile(r));
    hash.update(`${id}\n`);
  }
  const list = [...files];
  for (let i = 0; i < list.length; i += 64) {
    const stats = await Promise.all(list.slice(i, i + 64).map((f) => stat(f, { bigint: true })));
    stats.forEach((s, k) => hash.update(`${list[i + k]}\t${s.size}\t${s.mtimeNs}\n`));
  }
  return { records, digest: hash.digest('hex') };
}

async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

/** The cached embeddings, or why they cannot be used. */
async function readCached(dir: string, expected: Pick<Index, 'key' | 'count' | 'dim'>): Promise<Float32Array | string> {
  let index: Partial<Index>;
  try {
    index = JSON.parse(await readFile(path.join(dir, INDEX_FILE), 'utf8'));
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not built yet' : `${INDEX_FILE} unreadable (${(e as Error).message})`;
  }
  if (index.format !== 'arbex-features' || index.version !== VERSION || index.key !== expected.key) return `${INDEX_FILE} is not this cache's`;
  if (index.count !== expected.count || index.dim !== expected.dim) {
    return `${INDEX_FILE} says ${index.count} images x D ${index.dim}, expected ${expected.count} x ${expected.dim}`;
  }
  let bin: Buffer;
  try {
    bin = await readFile(path.join(dir, FEATURES_FILE));
  } catch (e) {
    return `${FEATURES_FILE} unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  const byteLength = expected.count * 2 * expected.dim * 4;
  if (bin.byteLength !== byteLength || index.byteLength !== byteLength) return `${FEATURES_FILE} has ${bin.byteLength} bytes, expected ${byteLength} (truncated?)`;
  if (sha256(bin) !== index.sha256) return `${FEATURES_FILE} does not match its SHA-256 (corrupt)`;
  const values = new Float32Array(bin.byteLength / 4);
  new Uint8Array(values.buffer).set(bin);
  return values;
}

/**
 * Embeds a batch of images [n, S, S, 3] followed by their mirrors: [2n, D] values; or, when
 * `mirrors` is false (an extractor whose output is the same for a face and its mirror), the
 * images alone: [n, D].
 */
type Embedder = { embed(images: Float32Array, n: number): Promise<Float32Array>; close(): Promise<void> };

function inThread(o: FeatureCacheOptions, S: number, mirrors: boolean): Embedder {
  return {
    async embed(images, n) {
      const e = tf.tidy(() => {
        const x = tf.tensor4d(images, [n, S, S, 3]);
        return o.model.embed(mirrors ? tf.concat([x, tf.reverse(x, 2)]) : x, INFER);
      });
      const values = (await e.data()) as Float32Array;
      e.dispose();
      return values;
    },
    close: async () => undefined,
  };
}

/** Rows of an NHWC batch mirrored left to right, after the batch itself. */
function withMirrors(images: Float32Array, n: number, S: number): Float32Array {
  const out = new Float32Array(2 * images.length);
  out.set(images);
  const row = S * 3;
  for (let r = 0; r < n * S; r++) {
    const src = r * row;
    const dst = images.length + r * row;
    for (let x = 0; x < S; x++) out.set(images.subarray(src + (S - 1 - x) * 3, src + (S - x) * 3), dst + x * 3);
  }
  return out;
}

async function inWorkers(o: FeatureCacheOptions, S: number, mirrors: boolean, workers: number): Promise<Embedder> {
  const { createWorkerPool, snapshotParams } = await import('../../backends/worker-pool.js');
  const { EXTRACTOR_WORKER_MODULE } = await import('../extractor/worker.js');
  const weights = Object.fromEntries(Object.entries(snapshotParams(o.model.store)).filter(([n]) => n.startsWith('extractor.')));
  const pool = await createWorkerPool({ module: EXTRACTOR_WORKER_MODULE, spec: { config: o.model.config.extractor, name: 'extractor', weights }, size: workers });
  return {
    async embed(images, n) {
      const { embedding } = await pool.predict(mirrors ? { data: withMirrors(images, n, S), shape: [2 * n, S, S, 3] } : { data: images, shape: [n, S, S, 3] });
      return embedding!.data;
    },
    close: () => pool.close(),
  };
}

/** Embeds every record and its mirror: [count, 2, D]. */
async function build(o: FeatureCacheOptions, records: DataRecord[], dim: number): Promise<Float32Array> {
  const S = o.model.config.extractor.inputSize;
  const features = new Float32Array(records.length * 2 * dim);
  const loader = createBatchLoader(o.dataset, { augmenter: createAugmenter({ size: S }), batchSize: o.batchSize, train: false, shuffle: false, prefetch: 2 });
  // A mirror-averaging extractor gives a face and its mirror the same embedding: one pass each.
  const ex = o.model.config.extractor;
  const mirrors = !(ex.kind === 'cnn' && ex.mirror === 'average');
  const views = mirrors ? 2 : 1;
  const embedder = o.workers ? await inWorkers(o, S, mirrors, o.workers) : inThread(o, S, mirrors);
  try {
    let row = 0;
    for await (const b of loader.batches(records)) {
      const values = await embedder.embed(b.images, b.count);
      if (values.length !== views * b.count * dim) throw new Error(`feature cache: the extractor gave ${values.length / (views * b.count)} values per image, its config says D = ${dim}`);
      const mirrorRow = mirrors ? b.count : 0;
      for (let i = 0; i < b.count; i++) {
        features.set(values.subarray(i * dim, (i + 1) * dim), (row + i) * 2 * dim);
        features.set(values.subarray((mirrorRow + i) * dim, (mirrorRow + i + 1) * dim), ((row + i) * 2 + 1) * dim);
      }
      row += b.count;
      o.progress?.update(row, records.length, `feature cache (${o.name})`);
    }
  } finally {
    await embedder.close();
  }
  o.progress?.end();
  return features;
}

/**
 * Opens (or builds) the cached embeddings of a data set under a model's frozen extractor.
 *
 * @example
 * const cache = await openFeatureCache({ model, dataset: train, dir: '.cache/features', batchSize: 64, name: 'train', log: console.error });
 * // cache: hit 3f2a… train (28709 images x 2 views, D 192) .cache/features/3f2a…
 * const e = tf.tensor2d(cache.gather(batch.records), [batch.records.length, cache.dim]);
 */
export async function openFeatureCache(options: FeatureCacheOptions): Promise<FeatureCache> {
  const o = options;
  const dim = o.model.config.extractor.embedDim;
  const { records, digest } = await datasetIdentity(o.dataset);
  const parts = {
    extractor: extractorDigest(o.model.store),
    preprocessing: { rule: PREPROCESSING, extractor: o.model.config.extractor, crop: o.model.config.crop ?? null },
    data: digest,
  };
  const key = sha256(JSON.stringify({ version: VERSION, ...parts })).slice(0, 32);
  const dir = path.join(o.dir, key);
  const what = `${o.name} (${records.length} images x 2 views, D ${dim}) ${dir}`;
  const cached = await readCached(dir, { key, count: records.length, dim });
  let features: Float32Array;
  if (typeof cached !== 'string') {
    o.log(`cache: hit ${key} ${what}`);
    features = cached;
  } else {
    o.log(`cache: miss ${key} ${what}: ${cached}; computing`);
    const t0 = performance.now();
    features = await build(o, records, dim);
    const seconds = (performance.now() - t0) / 1000;
    const bytes = new Uint8Array(features.buffer);
    const index: Index = { format: 'arbex-features', version: VERSION, key, count: records.length, dim, byteLength: bytes.byteLength, sha256: sha256(bytes), parts, seconds };
    await mkdir(dir, { recursive: true });
    await writeAtomic(path.join(dir, FEATURES_FILE), bytes);
    await writeAtomic(path.join(dir, INDEX_FILE), JSON.stringify(index, null, 1) + '\n');
    o.log(`cache: built ${key} in ${seconds.toFixed(1)} s (${((1000 * seconds) / Math.max(1, records.length)).toFixed(1)} ms per image and its mirror)`);
  }
  const rows = new Map(records.map((r, i) => [recordId(r), i]));
  return {
    key,
    path: dir,
    count: records.length,
    dim,
    hit: typeof cached !== 'string',
    gather(wanted, mirrored) {
      const out = new Float32Array(wanted.length * dim);
      wanted.forEach((r, i) => {
        const row = rows.get(recordId(r));
        if (row === undefined) throw new Error(`feature cache ${key}: ${r.path} is not one of the cached images`);
        const at = (row * 2 + (mirrored?.[i] ? 1 : 0)) * dim;
        out.set(features.subarray(at, at + dim), i * dim);
      });
      return out;
    },
  };
}
