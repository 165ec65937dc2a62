/**
 * The ARBEx reliability-balancing head (docs/MODEL-SPEC.md §2–5) on top of an embedding e ∈ R^D:
 * MLP → primary distribution l, anchor (geometric) correction t_g, per-sample attentive correction
 * t_a, confidence-weighted combination t, and the corrected distribution p_final.
 */
import * as tf from '@tensorflow/tfjs';
import { batchNorm, dropout, INFER, linear, sequential, type Ctx, type Layer } from '../nn/layers.js';
import { addParam, randomNormal, seededRandom, trainableVars, type ParamStore } from '../nn/params.js';
import type { FacePrediction } from '../types.js';
import { sampleAttention } from './attention.js';
import { featureDim, type HeadConfig } from './config.js';
import { confidence } from './ops.js';

export interface HeadOptions {
  /** Prefix of the parameter names in the store. */
  name: string;
  /**
   * Seed of the head's initial values. When set, the head's init does not depend on what else was
   * created in the store before it; when undefined, the store's own generator is used.
   */
  seed?: number;
}

export interface ForwardOptions {
  /** τ of p = (1 − τ)·l + τ·p_final; 1 at inference. */
  trust: number;
}

/** Every intermediate of one forward pass ([B, ·] tensors; the caller owns and disposes them). */
export interface HeadOutput {
  /** Reduced embedding e' (e itself when there is no reduction), [B, D']. */
  features: tf.Tensor2D;
  /** MLP logits z, [B, L]. */
  logits: tf.Tensor2D;
  /** l = softmax(z / T). */
  primary: tf.Tensor2D;
  /** c(l), [B]. */
  confidencePrimary: tf.Tensor1D;
  /** Anchor distances d_ij, [B, L, K]; null when K = 0. */
  distances: tf.Tensor3D | null;
  /** Anchor similarities s_ij (softmax over all L·K anchors), [B, L, K]; null when K = 0. */
  anchorSim: tf.Tensor3D | null;
  /** t_g[i] = Σ_j s_ij, [B, L]; null when K = 0. */
  tg: tf.Tensor2D | null;
  /** t_a, [B, L]. */
  ta: tf.Tensor2D;
  /** t = (c(t_g) t_g + c(t_a) t_a) / (c(t_g) + c(t_a) + ε), or t_a when K = 0. */
  t: tf.Tensor2D;
  /** p_final = c(l)·l + (1 − c(l))·t. */
  corrected: tf.Tensor2D;
  /** p = (1 − τ)·l + τ·p_final: the distribution the class loss sees. */
  trained: tf.Tensor2D;
  /** c(p_final), [B]. */
  confidence: tf.Tensor1D;
}

export interface Head {
  readonly config: HeadConfig;
  /** Anchors A, [L, K, D'] (a [L, 0, D'] variable when K = 0, never used). */
  readonly anchors: tf.Variable;
  /** The head's trainable variables as they are now (frozen ones excluded). */
  variables(): tf.Variable[];
  /** e [B, D] → all intermediates. Not tidied: call inside tf.tidy or dispose the outputs. */
  forward(e: tf.Tensor, ctx: Ctx, options?: Partial<ForwardOptions>): HeadOutput;
  /** Inference-mode per-face results as plain numbers (τ = 1); anchorSimilarity is [] when K = 0. */
  predict(e: tf.Tensor): Promise<FacePrediction[]>;
  /**
   * Sets every anchor of class i to the mean of its (reduced) embeddings plus a little noise; a
   * class with no sample keeps its random anchors. With noisy labels the means are still close to
   * the true ones, and training then starts from a useful geometric correction.
   */
  initAnchorsFromMeans(embeddings: tf.Tensor, labels: ArrayLike<number>, options?: Partial<AnchorInitOptions>): void;
}

export interface AnchorInitOptions {
  /** Noise std as a fraction of the class's RMS spread; identical anchors would stay identical. */
  noise: number;
}


/**
 * Creates the head's parameters in `store` and returns its forward functions.
 *
 * @example
 * const store = createParams();
 * const head = createHead(store, validateHeadConfig({ classes: ['a', 'b', 'c'], embedDim: 768 }));
 * const faces = await head.predict(embeddings); // [{ primary, corrected, confidence, label, ... }]
 */
export function createHead(store: ParamStore, config: HeadConfig, options: Partial<HeadOptions> = {}): Head {
  const { name, seed } = { name: 'head', ...options };
  const init: ParamStore = seed === undefined ? store : { vars: store.vars, rng: seededRandom(seed) };
  const L = config.classes.length;
  const K = config.anchorsPerClass;
  const D = featureDim(config);
  const { distance: epsDistance, combine: epsCombine, log: epsLog } = config.epsilon;

  const reduce: Layer | undefined =
    config.reduceDim === undefined ? undefined : linear(init, `${name}.reduce`, config.embedDim, D, false);

  const blocks: Layer[] = [];
  let width = D;
  config.hidden.forEach((h, i) => {
    const fc = linear(init, `${name}.mlp.${i}.linear`, width, h);
    const bn = batchNorm(init, `${name}.mlp.${i}.bn`, h);
    blocks.push(fc, (x) => tf.relu(x), bn, dropout(config.dropout));
    width = h;
  });
  blocks.push(linear(init, `${name}.mlp.out`, width, L));
  const mlp = sequential(...blocks);

  const attention = sampleAttention(init, `${name}.attn`, {
    dim: D,
    tokens: config.attention.tokens,
    heads: config.attention.heads,
    classes: L,
  });

  // Unit-variance random anchors: distinct (a zero init gives the anchor loss no gradient) and on
  // the scale of a normalised embedding. Adam moves each coordinate by about lr per step, so
  // anchors far from the data take many epochs to arrive: prefer initAnchorsFromMeans.
  const anchors = addParam(init, `${name}.anchors`, randomNormal(init, [L, K, D], 1));

  const features = (e: tf.Tensor, ctx: Ctx): tf.Tensor2D => (reduce ? reduce(e, ctx) : e) as tf.Tensor2D;

  function forward(e: tf.Tensor, ctx: Ctx, fwd: Partial<ForwardOptions> = {}): HeadOutput {
    const { trust } = { trust: 1, ...fwd };
    if (!(trust >= 0 && trust <= 1)) throw new Error(`head: trust must be in [0, 1] (got ${trust})`);
    if (e.rank !== 2 || e.shape[1] !== config.embedDim) {
      throw new Error(`head: expected embeddings of shape [B, ${config.embedDim}] (got [${e.shape.join(', ')}])`);
    }
    const B = e.shape[0]!;
    const f = features(e, ctx);
    const logits = mlp(f, ctx) as tf.Tensor2D;
    const primary = tf.softmax(tf.div(logits, config.temperature)) as tf.Tensor2D;
    const cl = confidence(primary, epsLog) as tf.Tensor1D;
    const ta = attention(f, ctx);

    let distances: tf.Tensor3D | null = null;
    let anchorSim: tf.Tensor3D | null = null;
    let tg: tf.Tensor2D | null = null;
    let t: tf.Tensor2D = ta;
    if (K > 0) {
      // ||e − a||² = ||e||² − 2e·a + ||a||²: one matMul instead of a [B, L·K, D] difference tensor
      // and its gradient. Its rounding error, ~1e-7·(||e||² + ||a||²) on d², can make d² slightly
      // negative for e ≈ a, hence the relu.
      const flat = anchors.reshape([L * K, D]);
      const cross = tf.matMul(f, flat.transpose()); // explicit transpose: wasm's transposeB is slow
      const sq = tf.add(tf.sub(tf.sum(tf.square(f), -1, true), tf.mul(cross, 2)), tf.sum(tf.square(flat), -1));
      const d = tf.sqrt(tf.add(tf.relu(sq), epsDistance)); // [B, L·K]
      const s = tf.softmax(tf.div(tf.neg(d), config.delta), -1);
      distances = d.reshape([B, L, K]) as tf.Tensor3D;
      anchorSim = s.reshape([B, L, K]) as tf.Tensor3D;
      tg = tf.sum(anchorSim, -1) as tf.Tensor2D;
      const cg = confidence(tg, epsLog).expandDims(1);
      const ca = confidence(ta, epsLog).expandDims(1);
      t = tf.div(tf.add(tf.mul(cg, tg), tf.mul(ca, ta)), tf.add(tf.add(cg, ca), epsCombine)) as tf.Tensor2D;
    }
    const c = cl.expandDims(1);
    const corrected = tf.add(tf.mul(c, primary), tf.mul(tf.sub(1, c), t)) as tf.Tensor2D;
    const trained = (trust === 1 ? corrected : tf.add(tf.mul(1 - trust, primary), tf.mul(trust, corrected))) as tf.Tensor2D;
    return {
      features: f,
      logits,
      primary,
      confidencePrimary: cl,
      distances,
      anchorSim,
      tg,
      ta,
      t,
      corrected,
      trained,
      confidence: confidence(corrected, epsLog) as tf.Tensor1D,
    };
  }

  async function predict(e: tf.Tensor): Promise<FacePrediction[]> {
    const parts = tf.tidy(() => {
      const out = forward(e, INFER);
      return [out.primary, out.corrected, out.confidencePrimary, out.confidence, ...(out.tg ? [out.tg] : [])];
    });
    try {
      const [primary, corrected, cl, cf, tg] = (await Promise.all(parts.map((x) => x.array()))) as [
        number[][], number[][], number[], number[], number[][] | undefined,
      ];
      return corrected.map((p, b) => {
        const labelIndex = p.indexOf(Math.max(...p));
        return {
          primary: primary[b]!,
          corrected: p,
          primaryConfidence: cl[b]!,
          confidence: cf[b]!,
          anchorSimilarity: tg ? tg[b]! : [], // K = 0: no anchors, no t_g
          labelIndex,
          label: config.classes[labelIndex]!,
        };
      });
    } finally {
      tf.dispose(parts);
    }
  }

  function initAnchorsFromMeans(embeddings: tf.Tensor, labels: ArrayLike<number>, opts: Partial<AnchorInitOptions> = {}): void {
    const { noise } = { noise: 0.1, ...opts };
    if (labels.length !== embeddings.shape[0]) {
      throw new Error(`head: ${embeddings.shape[0]} embeddings but ${labels.length} labels`);
    }
    if (K === 0) return;
    const f = tf.tidy(() => features(embeddings, INFER).arraySync()) as number[][];
    const current = anchors.arraySync() as number[][][];
    const next = current.map((classAnchors, i) => {
      const rows = f.filter((_, n) => labels[n] === i);
      if (rows.length === 0) return classAnchors; // no data for this class: keep the random anchors
      const mean = new Array<number>(D).fill(0);
      for (const r of rows) for (let k = 0; k < D; k++) mean[k]! += r[k]! / rows.length;
      let spread = 0;
      for (const r of rows) for (let k = 0; k < D; k++) spread += (r[k]! - mean[k]!) ** 2 / (rows.length * D);
      // A single sample has no spread; unit noise still keeps its K anchors apart.
      const std = noise * (Math.sqrt(spread) || 1);
      return classAnchors.map(() => mean.map((m) => m + std * gaussian(init.rng)));
    });
    tf.tidy(() => anchors.assign(tf.tensor3d(next, [L, K, D])));
  }

  const variables = () => trainableVars(store, [`${name}.`]);

  return { config, anchors, variables, forward, predict, initAnchorsFromMeans };
}

function gaussian(rng: () => number): number {
  return Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-12))) * Math.cos(2 * Math.PI * rng());
}
