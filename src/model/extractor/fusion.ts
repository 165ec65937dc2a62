/**
 * One pyramid level of POSTER V2's window multi-head cross-attention (W-MCSA):
 *   x  = LayerNorm(conv3x3 stride 2 (image tap))                    (also the residual)
 *   a  = proj(softmax(q kᵀ/√d + relative-position bias) v)  per window,
 *        q = landmark tap split into heads (no projection, as in the reference),
 *        k, v = Linear(x) split into heads
 *   x  = x + dropPath(γ1 · a);   x = x + dropPath(γ2 · MLP(LayerNorm(x)))
 * Windows never span two samples, so the result is batch invariant.
 */
import * as tf from '@tensorflow/tfjs';
import { layerNorm, linear, type Ctx } from '../nn/layers.js';
import { addParam, randomNormal } from '../nn/params.js';
import { attend, dropPath, layerScale, mergeHeads, mlp, splitHeads } from '../nn/transformer.js';
import { conv, type Build } from './parts.js';

/**
 * Index into the (2w-1)² bias table for every (query, key) pair of a w×w window, row-major
 * positions, exactly as Swin / GC ViT compute `relative_position_index`.
 */
export function relativePositionIndex(w: number): Int32Array {
  const n = w * w;
  const out = new Int32Array(n * n);
  for (let i = 0; i < n; i++) {
    const [yi, xi] = [Math.floor(i / w), i % w];
    for (let j = 0; j < n; j++) {
      const [yj, xj] = [Math.floor(j / w), j % w];
      out[i * n + j] = (yi - yj + w - 1) * (2 * w - 1) + (xi - xj + w - 1);
    }
  }
  return out;
}

/**
 * [B, H, W, C] → [B·(H/w)·(W/w), w·w, C]. Done with rank-4 transposes only (wasm's transpose
 * is limited in rank): rows of a window are contiguous blocks of w·C values.
 */
export function windowPartition(x: tf.Tensor, w: number): tf.Tensor3D {
  const [b, h, wd, c] = x.shape;
  if (h === w && wd === w) return x.reshape([b, w * w, c]);
  const t = tf.transpose(x.reshape([b * (h / w), w, wd / w, w * c]), [0, 2, 1, 3]);
  return t.reshape([b * (h / w) * (wd / w), w * w, c]);
}

/** Inverse of windowPartition. */
export function windowReverse(x: tf.Tensor, w: number, b: number, h: number, wd: number): tf.Tensor4D {
  const c = x.shape[2]!;
  if (h === w && wd === w) return x.reshape([b, h, wd, c]);
  const t = tf.transpose(x.reshape([b * (h / w), wd / w, w, w * c]), [0, 2, 1, 3]);
  return t.reshape([b, h, wd, c]);
}

export interface FusionLevel {
  /** Image tap (before the stride-2 conv) and landmark query tap of matching width → fused map. */
  (image: tf.Tensor, query: tf.Tensor, ctx: Ctx): tf.Tensor4D;
}

export function fusionLevel(
  b: Build,
  name: string,
  o: { dim: number; heads: number; window: number; mlpRatio: number; layerScale: number; dropPath: number; imageSide: number },
): FusionLevel {
  const { dim, heads, window: w, mlpRatio, dropPath: dp, imageSide } = o;
  const side = imageSide / 2;
  const n = w * w;
  const tokens = side * side;
  const down = conv(b, `${name}.down`, { inCh: dim, outCh: dim, kernel: 3, stride: 2, bias: true, side: imageSide });
  const norm1 = layerNorm(b.store, `${name}.norm1`, dim);
  // The reference's fused `qkv` Linear(dim, 2·dim) is kept as two linears (its two column
  // blocks): splitting the activations afterwards is slower on wasm than a second matMul.
  const kLin = linear(b.store, `${name}.attn.k`, dim, dim);
  const vLin = linear(b.store, `${name}.attn.v`, dim, dim);
  const proj = linear(b.store, `${name}.attn.proj`, dim, dim);
  const table = addParam(b.store, `${name}.attn.relBias`, randomNormal(b.store, [(2 * w - 1) ** 2, heads], 0.02));
  const index = relativePositionIndex(w);
  const gamma1 = layerScale(b.store, `${name}.gamma1`, dim, o.layerScale);
  const gamma2 = layerScale(b.store, `${name}.gamma2`, dim, o.layerScale);
  const norm2 = layerNorm(b.store, `${name}.norm2`, dim);
  const ffn = mlp(b.store, `${name}.mlp`, dim, dim * mlpRatio);
  // kv and proj linears, q·k and attn·v, the MLP.
  b.cost.macs += tokens * (3 * dim * dim) + 2 * tokens * n * dim + tokens * 2 * dim * dim * mlpRatio;

  return (image, query, ctx) => {
    const x = norm1(down(image, ctx), ctx) as tf.Tensor4D;
    const [bs, h, wd] = x.shape;
    const xw = windowPartition(x, w);
    const [k, v] = [kLin, vLin].map((f) => splitHeads(f(xw, ctx), heads));
    const q = splitHeads(windowPartition(query, w), heads);
    const bias = tf.transpose(tf.gather(table, tf.tensor1d(index, 'int32')).reshape([n, n, heads]), [2, 0, 1]);
    const a = proj(mergeHeads(attend(q, k, v, bias)), ctx);
    let y = tf.add(x, dropPath(gamma1(windowReverse(a, w, bs, h, wd), ctx), dp, ctx));
    y = tf.add(y, dropPath(gamma2(ffn(norm2(y, ctx), ctx), ctx), dp, ctx));
    return y as tf.Tensor4D;
  };
}
