/**
 * ARBEx losses (docs/MODEL-SPEC.md §6): class-distribution NLL of p, bounded anchor loss, center loss,
 * and their trust-weighted total L = λ_cd·L_cd + τ·(λ_a·L_a + λ_c·L_c).
 */
import * as tf from '@tensorflow/tfjs';
import { featureDim, type HeadConfig } from './config.js';
import type { HeadOutput } from './head.js';
import { stopGradient } from './ops.js';

export interface HeadLosses {
  total: tf.Scalar;
  classDistribution: tf.Scalar;
  anchor: tf.Scalar;
  center: tf.Scalar;
}

export interface ClassLossOptions {
  labelSmoothing: number;
  classWeights?: number[];
  logEps: number;
}

/**
 * L_cd: −Σ_i q_i log p_i with q = (1 − ε)·onehot(y) + ε/L, averaged over the batch. With class
 * weights w each sample counts w_y and the sum is divided by Σ w_y (PyTorch's weighted mean), so
 * the loss scale does not change with the batch's class mix.
 */
export function classDistributionLoss(p: tf.Tensor2D, labels: tf.Tensor1D, options: ClassLossOptions): tf.Scalar {
  const { labelSmoothing: eps, classWeights, logEps } = options;
  return tf.tidy(() => {
    const L = p.shape[1];
    const onehot = tf.oneHot(labels, L).toFloat();
    const target = tf.add(tf.mul(onehot, 1 - eps), eps / L);
    const perSample = tf.neg(tf.sum(tf.mul(target, tf.log(tf.maximum(p, logEps))), -1));
    if (!classWeights) return tf.mean(perSample) as tf.Scalar;
    const w = tf.sum(tf.mul(onehot, tf.tensor1d(classWeights)), -1);
    return tf.div(tf.sum(tf.mul(perSample, w)), tf.sum(w)) as tf.Scalar;
  });
}

/**
 * L_a = −(1 / (√D K²)) Σ_{i≠i'} min(||vec(A_i) − vec(A_i')||², K·margin), over ordered class pairs.
 * The cap is this project's bound on the spec's L_a, which is unbounded below: past it a pair has no
 * gradient, so anchors are pushed apart until paired anchors are √margin apart (RMS) and then stop,
 * and L_a ≥ −L(L−1)·margin / (√D K). The i = i' terms are 0 and need no masking.
 */
export function anchorLoss(anchors: tf.Tensor, margin: number): tf.Scalar {
  const [L, K, D] = anchors.shape as [number, number, number];
  if (K === 0) return tf.scalar(0);
  return tf.tidy(() => {
    const v = anchors.reshape([L, K * D]);
    const sq = tf.sum(tf.square(tf.sub(v.expandDims(1), v.expandDims(0))), -1); // [L, L]
    return tf.div(tf.sum(tf.minimum(sq, K * margin)), -Math.sqrt(D) * K * K) as tf.Scalar;
  });
}

/**
 * L_c = mean_b [ min_j d_{y_b, j} · c(l_b) ] / √dim, with d the head's anchor distances (so the
 * distance carries the same +ε under the root, which keeps its gradient finite at d = 0).
 *
 * c(l_b) is a constant weight here (stop-gradient): it is there to trust the pull only as much as
 * the primary prediction is confident. Letting gradient reach it would reward the MLP for lowering
 * its own confidence — the cheapest way to shrink L_c on far (often mislabelled) samples — which
 * works against L_cd and flattens l exactly where the correction needs it to be informative.
 */
export function centerLoss(
  distances: tf.Tensor3D,
  labels: tf.Tensor1D,
  confidencePrimary: tf.Tensor1D,
  dim: number,
): tf.Scalar {
  const [, L, K] = distances.shape;
  if (K === 0) return tf.scalar(0);
  return tf.tidy(() => {
    const own = tf.sum(tf.mul(distances, tf.oneHot(labels, L).toFloat().expandDims(2)), 1); // [B, K]
    const nearest = tf.min(own, -1);
    const weighted = tf.mul(nearest, stopGradient(confidencePrimary));
    return tf.div(tf.mean(weighted), Math.sqrt(dim)) as tf.Scalar;
  });
}

/**
 * All losses of one forward pass. `trust` is the same τ the forward pass used for p.
 *
 * @example
 * const { total } = headLosses(head.config, head.anchors, head.forward(e, { training: true }, { trust }), y, trust);
 */
export function headLosses(
  config: HeadConfig,
  anchors: tf.Tensor,
  out: HeadOutput,
  labels: tf.Tensor1D,
  trust: number,
): HeadLosses {
  const { labelSmoothing, classWeights, lambdaCd, lambdaA, lambdaC, anchorMargin } = config.loss;
  return tf.tidy((): tf.TensorContainerObject => {
    const classDistribution = classDistributionLoss(out.trained, labels, {
      labelSmoothing,
      classWeights,
      logEps: config.epsilon.log,
    });
    const anchor = anchorLoss(anchors, anchorMargin);
    // √D of the space the anchors live in (D' when the head reduces e).
    const center = out.distances
      ? centerLoss(out.distances, labels, out.confidencePrimary, featureDim(config))
      : tf.scalar(0);
    const total = tf.add(tf.mul(lambdaCd, classDistribution), tf.mul(trust, tf.add(tf.mul(lambdaA, anchor), tf.mul(lambdaC, center))));
    return { total, classDistribution, anchor, center };
  }) as unknown as HeadLosses;
}
