/**
 * Training-time BatchNorm and PReLU as single taped operations with closed-form gradients.
 * tfjs-core differentiates them through dozens of small kernels (its BatchNorm gradient alone
 * tiles, divides and reduces per term; PReLU's uses Greater, two Selects and a ZerosLike), and on
 * wasm some of those (FusedBatchNorm, Greater, Select) are plain loops 10-20x slower than the
 * XNNPACK element-wise ops used here. Both work on any backend; channels are the last axis.
 */
import * as tf from '@tensorflow/tfjs';

type Taped = (
  inputs: tf.Tensor[],
  save: tf.GradSaveFunc,
) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] };

/** tf.customGrad with typed arguments: `body` gets the inputs as an array, then the save function. */
function taped(body: Taped): (...inputs: tf.Tensor[]) => tf.Tensor {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) =>
    body(args.slice(0, -1) as tf.Tensor[], args[args.length - 1] as tf.GradSaveFunc),
  );
}

/** Axes 0..rank-2: everything but the channel axis. */
const leadingAxes = (x: tf.Tensor): number[] => x.shape.slice(0, -1).map((_, i) => i);

export interface BatchNormTraining {
  y: tf.Tensor;
  /** Batch mean and (biased) variance per channel, for the moving averages. */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/**
 * BatchNorm with the batch's own statistics: y = γ·x̂ + β, x̂ = (x − μ)/√(σ² + ε). Gradients (N
 * values per channel): dx = γ/σ·(dy − mean(dy) − x̂·mean(dy·x̂)), dγ = Σ dy·x̂, dβ = Σ dy. The
 * statistics are computed outside the taped operation: they reach y only through it, so the
 * tape prunes their kernels and the closed form accounts for their effect on dx.
 *
 * @example
 * const { y, mean, variance } = batchNormTraining(x, gamma, beta, 1e-5);
 */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): BatchNormTraining {
  const axes = leadingAxes(x);
  const n = x.size / x.shape[x.shape.length - 1];
  const mean = tf.mean(x, axes) as tf.Tensor1D;
  // squaredDifference saves only x and the mean, both alive anyway (tf.moments' Square keeps a
  // whole centred copy of x on the tape).
  const variance = tf.mean(tf.squaredDifference(x, mean), axes) as tf.Tensor1D;
  const forward = taped(([xIn, g, b], save) => {
    const invStd = tf.rsqrt(tf.add(variance, eps));
    const scale = tf.mul(g, invStd);
    save([xIn, mean, invStd, g]);
    return {
      value: tf.add(tf.mul(xIn, scale), tf.sub(b, tf.mul(mean, scale))),
      gradFunc: (dyT, [xs, mu, inv, gam]) => {
        const xHat = tf.mul(tf.sub(xs, mu), inv);
        const dBeta = tf.sum(dyT, axes);
        const dGamma = tf.sum(tf.mul(dyT, xHat), axes);
        // dx = γ/σ · (dy − (x̂·dγ + dβ)/N): per-channel coefficients first, then three passes.
        const centred = tf.sub(dyT, tf.add(tf.mul(xHat, tf.div(dGamma, n)), tf.div(dBeta, n)));
        return [tf.mul(centred, tf.mul(gam, inv)), dGamma, dBeta];
      },
    };
  });
  return { y: forward(x, gamma, beta), mean, variance };
}

/**
 * PReLU with one slope per channel (last axis): y = x > 0 ? x : α·x. Gradients:
 * dx = dy·(x > 0 ? 1 : α), dα = Σ dy·min(x, 0).
 *
 * @example
 * const y = channelPrelu(x, alpha);
 */
export function channelPrelu(x: tf.Tensor, alpha: tf.Tensor): tf.Tensor {
  const forward = taped(([xIn, a], save) => {
    save([xIn, a]);
    return {
      value: tf.prelu(xIn, a),
      gradFunc: (dyT, [xs, al]) => {
        const positive = tf.step(xs, 0); // 1 where x > 0, else 0
        // slope = positive·(1 − α) + α is 1 or α.
        const slope = tf.add(tf.mul(positive, tf.sub(1, al)), al);
        const negativePart = tf.sub(xs, tf.relu(xs)); // min(x, 0)
        return [tf.mul(dyT, slope), tf.sum(tf.mul(dyT, negativePart), leadingAxes(xs))];
      },
    };
  });
  return forward(x, alpha);
}
