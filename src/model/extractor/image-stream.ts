/**
 * Image stream: the first three stages of the ArcFace IR-50 (improved residual) network, laid
 * out as POSTER V2's `ir50.py` so its `ir50.pth` weights map one to one:
 *   stem: conv3x3(3→stem) → BN → PReLU, stride 1
 *   bottleneck-IR: res = BN → conv3x3 → PReLU → conv3x3(stride) → BN;
 *                  shortcut = conv1x1(stride) → BN when the width changes, else a stride subsample.
 * Each stage starts with a stride-2 block, so taps come out at side/2, side/4, side/8.
 */
import * as tf from '@tensorflow/tfjs';
import { batchNorm, prelu, sequential, type Layer } from '../nn/layers.js';
import type { PosterConfig } from './config.js';
import { conv, convBn, fusedConvBn, outSide, type Build } from './parts.js';

/**
 * x[:, ::2, ::2, :] as a 1x1 depthwise conv with unit weights and stride 2: exact, and on wasm
 * much faster than a strided slice or reshape + slice (measured).
 */
function subsample2(x: tf.Tensor): tf.Tensor {
  return tf.depthwiseConv2d(x as tf.Tensor4D, tf.ones([1, 1, x.shape[3]!, 1]) as tf.Tensor4D, 2, 'valid');
}

function bottleneckIR(b: Build, name: string, inCh: number, depth: number, stride: 1 | 2, side: number): Layer {
  // bn1 precedes a zero-padded conv, so it cannot be folded into it exactly; bn2 can.
  const res = sequential(
    batchNorm(b.store, `${name}.res.bn1`, inCh),
    conv(b, `${name}.res.conv1`, { inCh, outCh: depth, kernel: 3, side }),
    prelu(b.store, `${name}.res.prelu`, depth),
    fusedConvBn(b, { conv: `${name}.res.conv2`, bn: `${name}.res.bn2` }, { inCh: depth, outCh: depth, kernel: 3, stride, side }),
  );
  let shortcut: Layer;
  if (inCh !== depth) {
    shortcut = fusedConvBn(b, { conv: `${name}.shortcut.conv`, bn: `${name}.shortcut.bn` }, { inCh, outCh: depth, kernel: 1, stride, side });
  } else if (stride === 2) {
    // MaxPool2d(1, 2) in the reference: keep every other pixel, starting at 0. Not tf.maxPool:
    // tfjs-wasm 4.22's MaxPoolGrad is wrong for a 1x1 window with stride 2 (measured vs cpu).
    shortcut = subsample2;
  } else {
    shortcut = (x) => x;
  }
  return (x, ctx) => tf.add(res(x, ctx), shortcut(x, ctx));
}

/** Builds the stream; the returned function maps [B, S, S, 3] (normalised) to three taps. */
export function imageStream(b: Build, name: string, cfg: PosterConfig): (x: tf.Tensor, ctx: { training: boolean }) => tf.Tensor[] {
  const { stemWidth, widths, depths } = cfg.image;
  let side = cfg.backboneSize;
  const stem = convBn(b, `${name}.stem`, { inCh: 3, outCh: stemWidth, kernel: 3, side });
  let inCh = stemWidth;
  const stages: Layer[] = [];
  for (let s = 0; s < 3; s++) {
    const blocks: Layer[] = [];
    for (let i = 0; i < depths[s]; i++) {
      const stride = i === 0 ? 2 : 1;
      blocks.push(bottleneckIR(b, `${name}.stage${s + 1}.${i}`, inCh, widths[s], stride, side));
      side = outSide(side, stride);
      inCh = widths[s];
    }
    stages.push(sequential(...blocks));
  }
  return (x, ctx) => {
    let h = stem(x, ctx);
    return stages.map((stage) => (h = stage(h, ctx)));
  };
}
