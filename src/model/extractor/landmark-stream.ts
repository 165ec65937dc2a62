/**
 * Landmark stream: MobileFaceNet as in POSTER V2's `mobilefacenet.py` (the 68-point landmark
 * net), up to `conv_6_sep`. Taps: after conv_3 (side/4), after conv_4 (side/8) and after
 * conv_6_sep (side/16, `outWidth` channels). The GDC landmark head is not needed and not built.
 */
import * as tf from '@tensorflow/tfjs';
import { sequential, type Layer } from '../nn/layers.js';
import type { PosterConfig } from './config.js';
import { convBn, outSide, type Build } from './parts.js';

/** Depth_Wise: 1x1 expand → depthwise 3x3 → 1x1 linear projection, optional residual. */
function depthWise(b: Build, name: string, o: { inCh: number; outCh: number; inner: number; stride: 1 | 2; side: number; residual: boolean }): Layer {
  const { inCh, outCh, inner, stride, side, residual } = o;
  const body = sequential(
    convBn(b, `${name}.conv`, { inCh, outCh: inner, kernel: 1, side }),
    convBn(b, `${name}.conv_dw`, { inCh: inner, outCh: inner, kernel: 3, stride, side, depthwise: true }),
    convBn(b, `${name}.project`, { inCh: inner, outCh, kernel: 1, side: outSide(side, stride) }, false),
  );
  return residual ? (x, ctx) => tf.add(x, body(x, ctx)) : body;
}

export function landmarkStream(b: Build, name: string, cfg: PosterConfig): (x: tf.Tensor, ctx: { training: boolean }) => tf.Tensor[] {
  const { widths: w, depths, expand, downExpand, outWidth } = cfg.landmark;
  let side = cfg.backboneSize;
  const head = [
    convBn(b, `${name}.conv1`, { inCh: 3, outCh: w[0], kernel: 3, stride: 2, side }),
  ];
  side = outSide(side, 2);
  head.push(convBn(b, `${name}.conv2_dw`, { inCh: w[0], outCh: w[0], kernel: 3, side, depthwise: true }));
  const stages: Layer[] = [];
  const names = [['conv_23', 'conv_3'], ['conv_34', 'conv_4'], ['conv_45', 'conv_5']];
  let inCh = w[0];
  for (let s = 0; s < 3; s++) {
    const layers = s === 0 ? [...head] : [];
    layers.push(depthWise(b, `${name}.${names[s][0]}`, { inCh, outCh: w[s], inner: downExpand[s], stride: 2, side, residual: false }));
    side = outSide(side, 2);
    for (let i = 0; i < depths[s]; i++) {
      layers.push(depthWise(b, `${name}.${names[s][1]}.${i}`, { inCh: w[s], outCh: w[s], inner: expand[s], stride: 1, side, residual: true }));
    }
    if (s === 2) layers.push(convBn(b, `${name}.conv_6_sep`, { inCh: w[2], outCh: outWidth, kernel: 1, side }));
    stages.push(sequential(...layers));
    inCh = w[s];
  }
  return (x, ctx) => {
    let h = x;
    return stages.map((stage) => (h = stage(h, ctx)));
  };
}
