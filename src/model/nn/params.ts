/**
 * Parameters as plain data: a named map of tf.Variables. Layers create their variables eagerly
 * when constructed (never lazily on first call), so gradients, freezing and saving always see
 * every weight. Variable names live only in this map: tfjs's global variable names are not used,
 * so two models with the same layout can coexist in one process.
 */
import * as tf from '@tensorflow/tfjs';

export interface ParamStore {
  readonly vars: Map<string, tf.Variable>;
  /** Seeded generator for initial values, so a model built with the same seed is identical. */
  readonly rng: () => number;
}

/** Mulberry32: small, fast, good enough for weight init and sampling. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function createParams(seed = 1): ParamStore {
  return { vars: new Map(), rng: seededRandom(seed) };
}

/** Registers a variable under a unique name. */
export function addParam(store: ParamStore, name: string, value: tf.Tensor, trainable = true): tf.Variable {
  if (store.vars.has(name)) throw new Error(`parameter "${name}" is defined twice`);
  const v = tf.variable(value, trainable);
  value.dispose();
  store.vars.set(name, v);
  return v;
}

/** Gaussian values from the store's generator (Box-Muller). */
export function randomNormal(store: ParamStore, shape: number[], std: number, mean = 0): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(store.rng(), 1e-12);
    const v = store.rng();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = mean + std * r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * v);
  }
  return tf.tensor(out, shape, 'float32');
}

/** Uniform values in [-limit, limit) from the store's generator. */
export function randomUniform(store: ParamStore, shape: number[], limit: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (store.rng() * 2 - 1) * limit;
  return tf.tensor(out, shape, 'float32');
}

/** Trainable variables, optionally only those whose name starts with one of the prefixes. */
export function trainableVars(store: ParamStore, prefixes?: string[]): tf.Variable[] {
  return [...store.vars.entries()]
    .filter(([name, v]) => v.trainable && (!prefixes || prefixes.some((p) => name.startsWith(p))))
    .map(([, v]) => v);
}

/** Marks every variable under a name prefix as frozen (not trained) or trainable again. */
export function setTrainable(store: ParamStore, prefix: string, trainable: boolean): void {
  for (const [name, v] of store.vars) if (name.startsWith(prefix) && !isStat(name)) v.trainable = trainable;
}

/** Running statistics (BatchNorm moving mean/variance) are never trainable. */
export function isStat(name: string): boolean {
  return name.endsWith('.movingMean') || name.endsWith('.movingVar');
}

export function countParams(store: ParamStore, prefix = ''): number {
  let n = 0;
  for (const [name, v] of store.vars) if (name.startsWith(prefix) && !isStat(name)) n += v.size;
  return n;
}

export function disposeParams(store: ParamStore): void {
  for (const v of store.vars.values()) v.dispose();
  store.vars.clear();
}
