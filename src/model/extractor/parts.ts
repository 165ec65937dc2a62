/**
 * Building blocks shared by the extractor's streams: convolutions padded the PyTorch way and a
 * running count of multiply-accumulates, so the cost per face is known analytically from the
 * layers actually built.
 */
import * as tf from '@tensorflow/tfjs';
import { batchNorm, conv2d, depthwiseConv2d, prelu, sequential, type Layer } from '../nn/layers.js';
import type { ParamStore } from '../nn/params.js';

/** What every builder receives: where parameters go and where costs are added. */
export interface Build {
  store: ParamStore;
  /** Multiply-accumulates per face, summed as layers are built. */
  cost: { macs: number };
}

export interface ConvSpec {
  inCh: number;
  outCh: number;
  kernel: 1 | 3;
  stride?: 1 | 2;
  bias?: boolean;
  /** Input side (square), for the cost count. */
  side: number;
  /** Depthwise (inCh must equal outCh). */
  depthwise?: boolean;
}

/** Output side of a kernel-1 or kernel-3 conv with PyTorch padding (k // 2). */
export function outSide(side: number, stride: number): number {
  return Math.floor((side - 1) / stride) + 1;
}

/**
 * Conv with symmetric padding k//2 as in PyTorch. tfjs 'same' pads a stride-2 conv on an even
 * input only at the bottom/right, which samples other pixels than PyTorch does and would break
 * imported weights, so stride-2 3x3 convs pad explicitly and run 'valid'.
 */
export function conv(b: Build, name: string, spec: ConvSpec): Layer {
  const { inCh, outCh, kernel, stride = 1, bias = false, side, depthwise = false } = spec;
  if (depthwise && inCh !== outCh) throw new Error(`${name}: depthwise conv needs inCh === outCh`);
  const o = outSide(side, stride);
  b.cost.macs += kernel * kernel * (depthwise ? 1 : inCh) * outCh * o * o;
  const explicit = kernel === 3 && stride === 2;
  const pad = explicit ? 'valid' : 'same';
  const inner = depthwise
    ? depthwiseConv2d(b.store, name, { channels: inCh, kernel, stride, pad })
    : conv2d(b.store, name, { inCh, outCh, kernel, stride, pad, bias });
  if (!explicit) return inner;
  return (x, ctx) => inner(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), ctx);
}

/** BatchNorm epsilon (PyTorch's default), shared by the layer and its folded inference form. */
export const BN_EPS = 1e-5;

/**
 * Conv → BatchNorm, optionally → PReLU (`prelu`: its parameter name) or ReLU (`act: 'relu'`).
 * Training runs the three layers as they are (batch
 * statistics). Inference folds the BatchNorm's moving statistics into the conv's weights and
 * bias and runs one fused conv + bias + PReLU kernel: on wasm that is several passes over the
 * activations fewer. The folded weights are recomputed on every call (they are tiny next to the
 * activations), so loading or training weights can never leave a stale copy behind.
 */
export function fusedConvBn(b: Build, names: { conv: string; bn: string; prelu?: string; act?: 'relu' }, spec: ConvSpec): Layer {
  const convLayer = conv(b, names.conv, spec);
  const bnLayer = batchNorm(b.store, names.bn, spec.outCh, 0.9, BN_EPS);
  const actLayer: Layer | undefined = names.prelu ? prelu(b.store, names.prelu, spec.outCh) : names.act === 'relu' ? (x) => tf.relu(x) : undefined;
  const train = actLayer ? sequential(convLayer, bnLayer, actLayer) : sequential(convLayer, bnLayer);
  const get = (n: string) => b.store.vars.get(n)!;
  const [w, gamma, beta, mean, variance] = [
    get(`${names.conv}.weight`),
    get(`${names.bn}.gamma`),
    get(`${names.bn}.beta`),
    get(`${names.bn}.movingMean`),
    get(`${names.bn}.movingVar`),
  ];
  const convBias = b.store.vars.get(`${names.conv}.bias`);
  const alpha = names.prelu ? get(`${names.prelu}.alpha`) : undefined;
  const { stride = 1, depthwise = false, kernel, outCh } = spec;
  const explicit = kernel === 3 && stride === 2;
  return (x, ctx) => {
    if (ctx.training) return train(x, ctx);
    const scale = tf.div(gamma, tf.sqrt(tf.add(variance, BN_EPS)));
    const filter = tf.mul(w, depthwise ? scale.reshape([1, 1, outCh, 1]) : scale) as tf.Tensor4D;
    const shift = convBias ? tf.mul(tf.sub(convBias, mean), scale) : tf.neg(tf.mul(mean, scale));
    const bias = tf.add(shift, beta);
    const input = (explicit ? tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]) : x) as tf.Tensor4D;
    const args = {
      x: input,
      filter,
      strides: stride,
      pad: explicit ? ('valid' as const) : ('same' as const),
      bias,
      activation: alpha ? ('prelu' as const) : names.act === 'relu' ? ('relu' as const) : ('linear' as const),
      preluActivationWeights: alpha,
    };
    return depthwise ? tf.fused.depthwiseConv2d(args) : tf.fused.conv2d(args);
  };
}

/** MobileFaceNet's Conv_block (conv → BN → PReLU) or, without `act`, its Linear_block. */
export function convBn(b: Build, name: string, spec: ConvSpec, act = true): Layer {
  return fusedConvBn(b, { conv: `${name}.conv`, bn: `${name}.bn`, prelu: act ? `${name}.prelu` : undefined }, spec);
}
