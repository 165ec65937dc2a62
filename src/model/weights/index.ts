/**
 * Saving and loading a model directory without tfjs-node:
 *   config.json   the model's configuration (plain JSON, validated by the caller)
 *   model.json    tfjs-style weights manifest plus the byte length and SHA-256 of the shard
 *   weights.bin   float32 values, in manifest order
 *
 * Loading checks everything (JSON syntax, byte length, checksum, every name and shape against the
 * model being filled) before assigning a single variable, so a bad directory never leaves a
 * model half-loaded.
 *
 * @example
 *   await saveModel('runs/demo', { config, store });
 *   const config = await readModelConfig('runs/demo');
 *   const store = buildModelFrom(config);          // same layout, fresh variables
 *   await loadWeights('runs/demo', store);
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from '../nn/params.js';

export const CONFIG_FILE = 'config.json';
export const MANIFEST_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';

interface Manifest {
  format: 'arbex-weights';
  version: 1;
  weightsManifest: [{ paths: [string]; weights: { name: string; shape: number[]; dtype: 'float32' }[] }];
  byteLength: number;
  sha256: string;
}

/** Writes a file atomically: a reader never sees a partly written file under the final name. */
async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

/** Saves config and every variable of the store (trainable or not) into `dir`. */
export async function saveModel(dir: string, model: { config: unknown; store: ParamStore }): Promise<void> {
  await mkdir(dir, { recursive: true });
  const names = [...model.store.vars.keys()];
  const parts: Uint8Array[] = [];
  const weights = [];
  for (const name of names) {
    const v = model.store.vars.get(name)!;
    if (v.dtype !== 'float32') throw new Error(`saveModel: variable "${name}" has dtype ${v.dtype}; only float32 is saved`);
    const values = v.dataSync() as Float32Array;
    parts.push(new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)));
    weights.push({ name, shape: v.shape, dtype: 'float32' as const });
  }
  const bin = Buffer.concat(parts);
  const manifest: Manifest = {
    format: 'arbex-weights',
    version: 1,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights }],
    byteLength: bin.byteLength,
    sha256: createHash('sha256').update(bin).digest('hex'),
  };
  // Weights first, manifest last: a crash in between leaves the old manifest, whose checksum
  // then names the mismatch instead of loading mixed weights.
  await writeAtomic(path.join(dir, WEIGHTS_FILE), bin);
  await writeAtomic(path.join(dir, CONFIG_FILE), JSON.stringify(model.config, null, 2) + '\n');
  await writeAtomic(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 1) + '\n');
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** Reads a model directory's config.json (the caller validates it). */
export function readModelConfig(dir: string): Promise<unknown> {
  return readJson(path.join(dir, CONFIG_FILE));
}

function parseManifest(file: string, json: unknown): Manifest {
  const m = json as Partial<Manifest>;
  const group = m?.weightsManifest?.[0];
  if (m?.format !== 'arbex-weights' || m.version !== 1 || !group || !Array.isArray(group.weights)) {
    throw new Error(`${file}: not an arbex weights manifest (format "arbex-weights", version 1)`);
  }
  if (!Number.isInteger(m.byteLength) || typeof m.sha256 !== 'string') {
    throw new Error(`${file}: manifest lacks byteLength or sha256`);
  }
  for (const w of group.weights) {
    if (typeof w?.name !== 'string' || !Array.isArray(w.shape) || !w.shape.every((d) => Number.isInteger(d) && d >= 0) || w.dtype !== 'float32') {
      throw new Error(`${file}: malformed weight entry ${JSON.stringify(w)}`);
    }
  }
  return m as Manifest;
}

/**
 * Reads the weights of a model directory into new tensors keyed by name, after checking the
 * shard's length and checksum. The caller owns (and must dispose) the returned tensors.
 */
export async function readWeights(dir: string): Promise<Map<string, tf.Tensor>> {
  const manifestFile = path.join(dir, MANIFEST_FILE);
  const manifest = parseManifest(manifestFile, await readJson(manifestFile));
  const binFile = path.join(dir, manifest.weightsManifest[0].paths[0]);
  let bin: Buffer;
  try {
    bin = await readFile(binFile);
  } catch (e) {
    throw new Error(`${binFile}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (bin.byteLength !== manifest.byteLength) {
    throw new Error(`${binFile}: truncated or wrong file: ${bin.byteLength} bytes, manifest says ${manifest.byteLength}`);
  }
  const specs = manifest.weightsManifest[0].weights;
  const expected = specs.reduce((n, w) => n + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
  if (expected !== bin.byteLength) {
    throw new Error(`${manifestFile}: weight shapes need ${expected} bytes but the shard has ${bin.byteLength}`);
  }
  if (createHash('sha256').update(bin).digest('hex') !== manifest.sha256) {
    throw new Error(`${binFile}: corrupt: SHA-256 does not match ${MANIFEST_FILE}`);
  }
  const out = new Map<string, tf.Tensor>();
  let offset = 0;
  for (const w of specs) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    // Copy into an aligned buffer: Float32Array views need 4-byte aligned offsets.
    const values = new Float32Array(n);
    new Uint8Array(values.buffer).set(bin.subarray(offset, offset + 4 * n));
    out.set(w.name, tf.tensor(values, w.shape, 'float32'));
    offset += 4 * n;
  }
  return out;
}

/**
 * Fills every variable of `store` from `dir` (with `prefix`: only the store's variables under that
 * prefix, e.g. `extractor.` to start training from another model's extractor; the directory may
 * then hold other weights too). All names and shapes are checked first; on any mismatch nothing
 * is assigned and the error names the file and the problem.
 */
export async function loadWeights(dir: string, store: ParamStore, options: { prefix?: string } = {}): Promise<void> {
  const { prefix } = options;
  const tensors = await readWeights(dir);
  try {
    const file = path.join(dir, MANIFEST_FILE);
    const wanted = [...store.vars].filter(([name]) => prefix === undefined || name.startsWith(prefix));
    if (wanted.length === 0) throw new Error(`${file}: the model has no variables under "${prefix}"`);
    const missing = wanted.map(([n]) => n).filter((n) => !tensors.has(n));
    const extra = prefix === undefined ? [...tensors.keys()].filter((n) => !store.vars.has(n)) : [];
    if (missing.length || extra.length) {
      const list = (xs: string[]) => xs.slice(0, 5).join(', ') + (xs.length > 5 ? ` (+${xs.length - 5} more)` : '');
      throw new Error(
        `${file}: does not match the model: ` +
          [missing.length ? `missing ${list(missing)}` : '', extra.length ? `unexpected ${list(extra)}` : ''].filter(Boolean).join('; '),
      );
    }
    for (const [name, v] of wanted) {
      const t = tensors.get(name)!;
      if (!tf.util.arraysEqual(t.shape, v.shape)) {
        throw new Error(`${file}: "${name}" has shape [${t.shape}] but the model expects [${v.shape}]`);
      }
    }
    for (const [name, v] of wanted) v.assign(tensors.get(name)!);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
