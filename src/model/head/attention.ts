/**
 * Attentive correction t_a = softmax(W_o · pool(MHSA(tokens(e)))), computed within each sample.
 * The authors' code attends across the rows of the batch, so a face's result depends on its batch
 * neighbours; here each embedding is cut into S tokens of D'/S values and only those attend to each
 * other, so every op below keeps the batch axis independent.
 */
import * as tf from '@tensorflow/tfjs';
import { linear, type Ctx } from '../nn/layers.js';
import { addParam, randomNormal, type ParamStore } from '../nn/params.js';

export interface SampleAttentionOptions {
  dim: number;
  tokens: number;
  heads: number;
  classes: number;
}

/**
 * Builds the per-sample attention branch; returns [B, D'] → t_a [B, L].
 *
 * @example
 * const ta = sampleAttention(store, 'head.attn', { dim: 768, tokens: 8, heads: 4, classes: 8 });
 * const dist = ta(e, { training: false }); // [B, 8], rows sum to 1
 */
export function sampleAttention(store: ParamStore, name: string, options: SampleAttentionOptions) {
  const { dim, tokens: S, heads: H, classes } = options;
  const dt = dim / S;
  const dk = dt / H;
  // Reshaping e gives tokens without an order and mean pooling forgets any order, so without a
  // learned position per token the branch could not tell which part of e a value came from.
  const position = addParam(store, `${name}.position`, randomNormal(store, [S, dt], 0.02));
  const q = linear(store, `${name}.q`, dt, dt);
  const k = linear(store, `${name}.k`, dt, dt);
  const v = linear(store, `${name}.v`, dt, dt);
  const out = linear(store, `${name}.out`, dt, dt);
  const project = linear(store, `${name}.project`, dt, classes);

  // [B, S, dt] → [B·H, S, dk]
  const split = (x: tf.Tensor, B: number) => x.reshape([B, S, H, dk]).transpose([0, 2, 1, 3]).reshape([B * H, S, dk]);

  return (e: tf.Tensor, ctx: Ctx): tf.Tensor2D =>
    tf.tidy(() => {
      const B = e.shape[0]!;
      const x = tf.add(e.reshape([B, S, dt]), position);
      const qh = split(q(x, ctx), B);
      const kh = split(k(x, ctx), B);
      const vh = split(v(x, ctx), B);
      // Explicit transpose + plain matMul: wasm's transposeB path is several times slower.
      const scores = tf.div(tf.matMul(qh, kh.transpose([0, 2, 1])), Math.sqrt(dk));
      const mixed = tf.matMul(tf.softmax(scores, -1), vh); // [B·H, S, dk]
      const merged = mixed.reshape([B, H, S, dk]).transpose([0, 2, 1, 3]).reshape([B, S, dt]);
      const pooled = tf.mean(out(merged, ctx), 1); // [B, dt]
      return tf.softmax(project(pooled, ctx), -1) as tf.Tensor2D;
    });
}
