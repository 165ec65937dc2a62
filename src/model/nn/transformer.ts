/**
 * Transformer pieces on top of layers.ts: GELU, stochastic depth, layer-scale, MLP and
 * multi-head attention over [B, N, C] token sets. Attention never mixes rows of the batch
 * axis, so a sample's output does not depend on its batch neighbours.
 */
import * as tf from '@tensorflow/tfjs';
import { linear, maskSeed, type Ctx, type Layer } from './layers.js';
import { addParam, type ParamStore } from './params.js';

/** Exact (erf) GELU, as PyTorch's nn.GELU default, so imported weights behave the same. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/**
 * Stochastic depth: in training, zeroes a residual branch for a random subset of samples and
 * rescales the rest by 1/keep, so the expectation is unchanged. Identity in inference.
 */
export function dropPath(x: tf.Tensor, rate: number, ctx: Ctx): tf.Tensor {
  if (!ctx.training || rate <= 0) return x;
  const keep = 1 - rate;
  const shape = [x.shape[0], ...x.shape.slice(1).map(() => 1)];
  const mask = tf.floor(tf.add(tf.randomUniform(shape, 0, 1, 'float32', maskSeed(ctx)), keep));
  return tf.mul(x, tf.div(mask, keep));
}

/** Per-channel learned scale on a residual branch (CaiT layer-scale). */
export function layerScale(store: ParamStore, name: string, dim: number, init: number): Layer {
  const gamma = addParam(store, name, tf.fill([dim], init));
  return (x) => tf.mul(x, gamma);
}

/** Linear → GELU → Linear over the last axis. */
export function mlp(store: ParamStore, name: string, dim: number, hidden: number): Layer {
  const fc1 = linear(store, `${name}.fc1`, dim, hidden);
  const fc2 = linear(store, `${name}.fc2`, hidden, dim);
  return (x, ctx) => fc2(gelu(fc1(x, ctx)), ctx);
}

/** [B, N, H*d] → [B, H, N, d]. */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor4D {
  const [b, n, c] = x.shape;
  return tf.transpose(x.reshape([b, n, heads, c / heads]), [0, 2, 1, 3]) as tf.Tensor4D;
}

/** [B, H, N, d] → [B, N, H*d]. */
export function mergeHeads(x: tf.Tensor): tf.Tensor3D {
  const [b, h, n, d] = x.shape;
  return tf.transpose(x, [0, 2, 1, 3]).reshape([b, n, h * d]) as tf.Tensor3D;
}

/**
 * Scaled dot-product attention on split heads: softmax(q kᵀ / √d + bias) v.
 * k is transposed explicitly: wasm's batched matMul with a transpose flag is 8-20x slower.
 * `bias` broadcasts over [B, H, Nq, Nk] (e.g. a relative-position bias [H, Nq, Nk]).
 */
export function attend(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias?: tf.Tensor): tf.Tensor4D {
  const scale = 1 / Math.sqrt(q.shape[3]);
  let logits = tf.matMul(tf.mul(q, scale) as tf.Tensor4D, tf.transpose(k, [0, 1, 3, 2]) as tf.Tensor4D);
  if (bias) logits = tf.add(logits, bias);
  return tf.matMul(tf.softmax(logits), v) as tf.Tensor4D;
}

/**
 * Multi-head self-attention (ViT style: q, k, v projections, output projection). q, k and v are
 * three linears rather than one fused qkv linear followed by a split: on wasm the split of the
 * activations cost more than the projections (measured). A fused PyTorch `qkv` weight maps to
 * them as its three column blocks.
 */
export function selfAttention(
  store: ParamStore,
  name: string,
  opts: { dim: number; heads: number; qkvBias?: boolean },
): Layer {
  const { dim, heads, qkvBias = false } = opts;
  const [q, k, v] = ['q', 'k', 'v'].map((p) => linear(store, `${name}.${p}`, dim, dim, qkvBias));
  const proj = linear(store, `${name}.proj`, dim, dim);
  return (x, ctx) => {
    const [qh, kh, vh] = [q, k, v].map((f) => splitHeads(f(x, ctx), heads));
    return proj(mergeHeads(attend(qh, kh, vh)), ctx);
  };
}
