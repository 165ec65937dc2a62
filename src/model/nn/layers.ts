/**
 * Small functional layers. Each factory creates its variables in the store under `name` and
 * returns a pure apply function. `ctx.training` switches BatchNorm statistics and dropout.
 */
import * as tf from '@tensorflow/tfjs';
import { batchNormTraining, channelPrelu } from './fused.js';
import { addParam, randomNormal, randomUniform, type ParamStore } from './params.js';

export interface Ctx {
  training: boolean;
  /**
   * Generator of the seeds of dropout and stochastic-depth masks in training, drawn in layer
   * order, so a step repeats exactly; absent: masks come from tfjs's unseeded generator.
   */
  random?: () => number;
}

export type Layer = (x: tf.Tensor, ctx: Ctx) => tf.Tensor;

export const INFER: Ctx = { training: false };

/** Linear layer over the last axis (Glorot-uniform weights, zero bias). */
export function linear(store: ParamStore, name: string, inDim: number, outDim: number, bias = true): Layer {
  const limit = Math.sqrt(6 / (inDim + outDim));
  const w = addParam(store, `${name}.weight`, randomUniform(store, [inDim, outDim], limit));
  const b = bias ? addParam(store, `${name}.bias`, tf.zeros([outDim])) : undefined;
  return (x) => {
    const shape = x.shape;
    const flat = shape.length === 2 ? (x as tf.Tensor2D) : x.reshape([-1, inDim]) as tf.Tensor2D;
    let y: tf.Tensor = tf.matMul(flat, w as tf.Tensor2D);
    if (b) y = tf.add(y, b);
    return shape.length === 2 ? y : y.reshape([...shape.slice(0, -1), outDim]);
  };
}

/**
 * BatchNorm over the last axis (works for [B, C] and NHWC). In training it normalises with the
 * batch statistics and updates the moving averages; in inference it uses the moving averages
 * only, so a sample's output never depends on the rest of its batch.
 */
export function batchNorm(store: ParamStore, name: string, channels: number, momentum = 0.9, eps = 1e-5): Layer {
  const gamma = addParam(store, `${name}.gamma`, tf.ones([channels]));
  const beta = addParam(store, `${name}.beta`, tf.zeros([channels]));
  const movingMean = addParam(store, `${name}.movingMean`, tf.zeros([channels]), false);
  const movingVar = addParam(store, `${name}.movingVar`, tf.ones([channels]), false);
  return (x, ctx) => {
    if (!ctx.training) return tf.batchNorm(x, movingMean, movingVar, beta, gamma, eps);
    const { y, mean, variance } = batchNormTraining(x, gamma, beta, eps);
    // The moving statistics are not on the loss path, so no gradient reaches them.
    tf.tidy(() => {
      movingMean.assign(tf.add(tf.mul(movingMean, momentum), tf.mul(mean, 1 - momentum)));
      movingVar.assign(tf.add(tf.mul(movingVar, momentum), tf.mul(variance, 1 - momentum)));
    });
    return y;
  };
}

/** LayerNorm over the last axis. */
export function layerNorm(store: ParamStore, name: string, dim: number, eps = 1e-5): Layer {
  const gamma = addParam(store, `${name}.gamma`, tf.ones([dim]));
  const beta = addParam(store, `${name}.beta`, tf.zeros([dim]));
  return (x) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), gamma), beta);
  };
}

/** Seed of the next random mask: from ctx.random when set, else undefined (unseeded). */
export function maskSeed(ctx: Ctx): number | undefined {
  return ctx.random && Math.floor(ctx.random() * 2 ** 32);
}

/** Inverted dropout, active only in training. */
export function dropout(rate: number): Layer {
  return (x, ctx) => (ctx.training && rate > 0 ? tf.dropout(x, rate, undefined, maskSeed(ctx)) : x);
}

/** 2-D convolution, NHWC, He-normal weights. */
export function conv2d(
  store: ParamStore,
  name: string,
  opts: { inCh: number; outCh: number; kernel: number; stride?: number; pad?: 'same' | 'valid'; bias?: boolean },
): Layer {
  const { inCh, outCh, kernel, stride = 1, pad = 'same', bias = false } = opts;
  const std = Math.sqrt(2 / (kernel * kernel * inCh));
  const w = addParam(store, `${name}.weight`, randomNormal(store, [kernel, kernel, inCh, outCh], std));
  const b = bias ? addParam(store, `${name}.bias`, tf.zeros([outCh])) : undefined;
  return (x) => {
    const y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, pad);
    return b ? tf.add(y, b) : y;
  };
}

/** Depthwise 2-D convolution, NHWC, channel multiplier 1. */
export function depthwiseConv2d(
  store: ParamStore,
  name: string,
  opts: { channels: number; kernel: number; stride?: number; pad?: 'same' | 'valid' },
): Layer {
  const { channels, kernel, stride = 1, pad = 'same' } = opts;
  const std = Math.sqrt(2 / (kernel * kernel));
  const w = addParam(store, `${name}.weight`, randomNormal(store, [kernel, kernel, channels, 1], std));
  return (x) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, pad);
}

/**
 * PReLU with one learned slope per channel (last axis), init 0.25. Training uses the closed-form
 * gradient of channelPrelu (same forward kernel).
 */
export function prelu(store: ParamStore, name: string, channels: number): Layer {
  const alpha = addParam(store, `${name}.alpha`, tf.fill([channels], 0.25));
  return (x, ctx) => (ctx.training ? channelPrelu(x, alpha) : tf.prelu(x, alpha));
}

/** Applies layers in order. */
export function sequential(...layers: Layer[]): Layer {
  return (x, ctx) => layers.reduce((h, layer) => layer(h, ctx), x);
}
