/**
 * The POSTER++-style feature extractor f_θ(x) = e (docs/MODEL-SPEC.md §1), built from one
 * ExtractorConfig: image stream (IR-50) and landmark stream (MobileFaceNet) → three levels of
 * window cross-attention → pyramid-to-token convs → ViT with CLS token → SE gate → e.
 */
import * as tf from '@tensorflow/tfjs';
import { INFER, layerNorm, linear, type Ctx } from '../nn/layers.js';
import { addParam, countParams, randomNormal, setTrainable, type ParamStore } from '../nn/params.js';
import { dropPath, mlp, selfAttention } from '../nn/transformer.js';
import { tokenCount, validateExtractorConfig, type ExtractorConfig, type PosterConfig } from './config.js';
import { createCnnExtractor } from './cnn.js';
import { fusionLevel } from './fusion.js';
import { imageStream } from './image-stream.js';
import { landmarkStream } from './landmark-stream.js';
import { conv, type Build } from './parts.js';

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

/** Every intermediate result of one forward pass (NHWC maps, [B, N, C] tokens). */
export interface ExtractorTaps {
  image: tf.Tensor4D[];
  landmark: tf.Tensor4D[];
  fused: tf.Tensor4D[];
  tokens: tf.Tensor3D;
  embedding: tf.Tensor2D;
}

export interface Extractor {
  readonly config: ExtractorConfig;
  /** Parameter name prefix inside the store. */
  readonly name: string;
  /** Parameters of this extractor (BatchNorm moving statistics excluded). */
  readonly paramCount: number;
  /** Multiply-accumulates per face (the unit POSTER V2 reports as "FLOPs", via thop). */
  readonly macsPerFace: number;
  /** [B, inputSize, inputSize, 3] RGB in [0, 1] → [B, embedDim]. */
  forward(x: tf.Tensor4D, ctx?: Ctx): tf.Tensor2D;
}

export interface PosterExtractor extends Extractor {
  readonly config: PosterConfig;
  /** Same computation as forward, returning every tap (for tests and inspection). */
  taps(x: tf.Tensor4D, ctx?: Ctx): ExtractorTaps;
}

export interface ExtractorOptions {
  /** Prefix of every parameter name. */
  name: string;
}

const DEFAULTS: ExtractorOptions = { name: 'extractor' };

/**
 * Creates the extractor's variables in `store` (either kind) and returns its forward function.
 * @example
 *   const store = createParams(7);
 *   const fx = createExtractor(store, extractorConfig('lite'));
 *   const e = tf.tidy(() => fx.forward(images));   // [B, 128]
 */
export function createExtractor(store: ParamStore, config: ExtractorConfig, options: Partial<ExtractorOptions> = {}): Extractor {
  const { name } = { ...DEFAULTS, ...options };
  const cfg = validateExtractorConfig(config);
  if (cfg.kind === 'cnn') return { config: cfg, name, ...createCnnExtractor(store, cfg, name) };
  return createPosterExtractor(store, cfg, { name });
}

/** The POSTER++-style extractor, with access to every intermediate tap. */
export function createPosterExtractor(store: ParamStore, config: PosterConfig, options: Partial<ExtractorOptions> = {}): PosterExtractor {
  const { name } = { ...DEFAULTS, ...options };
  const cfg = validateExtractorConfig(config) as PosterConfig;
  const b: Build = { store, cost: { macs: 0 } };
  const S = cfg.backboneSize;
  const w = cfg.image.widths;
  const T = cfg.tokenDim;

  const image = imageStream(b, `${name}.image`, cfg);
  const landmark = landmarkStream(b, `${name}.landmark`, cfg);
  // The third landmark tap is reduced to the image width (POSTER V2's last_face_conv).
  const queryReduce = conv(b, `${name}.fusion.l3.query`, { inCh: cfg.landmark.outWidth, outCh: w[2], kernel: 3, bias: true, side: S / 16 });
  const levels = [0, 1, 2].map((i) =>
    fusionLevel(b, `${name}.fusion.l${i + 1}`, {
      dim: w[i],
      heads: cfg.fusion.heads[i],
      window: cfg.fusion.windows[i],
      mlpRatio: cfg.fusion.mlpRatio,
      layerScale: cfg.fusion.layerScale,
      dropPath: cfg.fusion.dropPath[i],
      imageSide: S / 2 ** (i + 1),
    }),
  );
  // Pyramid to tokens: every level ends at side S/16.
  const toTokens = [
    [
      conv(b, `${name}.tokens.l1.conv1`, { inCh: w[0], outCh: T, kernel: 3, stride: 2, bias: true, side: S / 4 }),
      conv(b, `${name}.tokens.l1.conv2`, { inCh: T, outCh: T, kernel: 3, stride: 2, bias: true, side: S / 8 }),
    ],
    [conv(b, `${name}.tokens.l2.conv`, { inCh: w[1], outCh: T, kernel: 3, stride: 2, bias: true, side: S / 8 })],
    [conv(b, `${name}.tokens.l3.conv`, { inCh: w[2], outCh: T, kernel: 1, bias: true, side: S / 16 })],
  ];

  const n = tokenCount(cfg) + 1;
  const cls = addParam(store, `${name}.vit.cls`, randomNormal(store, [1, 1, T], 0.02));
  const pos = addParam(store, `${name}.vit.pos`, randomNormal(store, [1, n, T], 0.02));
  const blocks = Array.from({ length: cfg.vit.depth }, (_, i) => {
    const p = `${name}.vit.blocks.${i}`;
    const rate = cfg.vit.depth > 1 ? (cfg.vit.dropPath * i) / (cfg.vit.depth - 1) : cfg.vit.dropPath;
    const norm1 = layerNorm(store, `${p}.norm1`, T, 1e-6);
    const attn = selfAttention(store, `${p}.attn`, { dim: T, heads: cfg.vit.heads });
    const norm2 = layerNorm(store, `${p}.norm2`, T, 1e-6);
    const ffn = mlp(store, `${p}.mlp`, T, cfg.vit.mlpDim);
    b.cost.macs += n * (4 * T * T + 2 * T * cfg.vit.mlpDim) + 2 * n * n * T;
    return (x: tf.Tensor, ctx: Ctx) => {
      const y = tf.add(x, dropPath(attn(norm1(x, ctx), ctx), rate, ctx));
      return tf.add(y, dropPath(ffn(norm2(y, ctx), ctx), rate, ctx));
    };
  });
  const norm = layerNorm(store, `${name}.vit.norm`, T, 1e-6);
  const se1 = linear(store, `${name}.se.fc1`, T, T);
  const se2 = linear(store, `${name}.se.fc2`, T, T);
  const reduce = cfg.embedDim !== T ? linear(store, `${name}.reduce`, T, cfg.embedDim) : undefined;
  b.cost.macs += 2 * T * T + (reduce ? T * cfg.embedDim : 0);

  // Freezing: frozen variables drop out of trainableVars(), and the frozen stream runs with its
  // moving statistics so that training never drifts a pretrained backbone's BatchNorm.
  setTrainable(store, `${name}.landmark.`, !cfg.frozen.landmark);
  setTrainable(store, `${name}.image.`, !cfg.frozen.image);
  const streamCtx = (frozen: boolean, ctx: Ctx): Ctx => (frozen ? INFER : ctx);

  function taps(x: tf.Tensor4D, ctx: Ctx = INFER): ExtractorTaps {
    const [bs, hgt, wid, ch] = x.shape;
    if (hgt !== cfg.inputSize || wid !== cfg.inputSize || ch !== 3) {
      throw new Error(`extractor expects [B, ${cfg.inputSize}, ${cfg.inputSize}, 3] input, got [${x.shape.join(', ')}]`);
    }
    // POSTER V2 resizes with F.interpolate's default (nearest, no corner alignment).
    const resized = cfg.inputSize === S ? x : tf.image.resizeNearestNeighbor(x, [S, S]);
    const normed = tf.div(tf.sub(resized, tf.tensor1d(IMAGENET_MEAN)), tf.tensor1d(IMAGENET_STD));
    const img = image(normed, streamCtx(cfg.frozen.image, ctx)) as tf.Tensor4D[];
    const lm = landmark(normed, streamCtx(cfg.frozen.landmark, ctx)) as tf.Tensor4D[];
    const queries = [lm[0], lm[1], queryReduce(lm[2], ctx)];
    const fused = levels.map((level, i) => level(img[i], queries[i], ctx));
    const tokenSets = fused.map((f, i) => {
      const t = toTokens[i].reduce((h, layer) => layer(h, ctx), f as tf.Tensor);
      return t.reshape([bs, -1, T]);
    });
    const tokens = tf.concat(tokenSets, 1) as tf.Tensor3D;
    let h: tf.Tensor = tf.add(tf.concat([tf.tile(cls, [bs, 1, 1]), tokens], 1), pos);
    for (const block of blocks) h = block(h, ctx);
    const c = norm(h, ctx).slice([0, 0, 0], [bs, 1, T]).reshape([bs, T]);
    const gate = tf.sigmoid(se2(tf.relu(se1(c, ctx)), ctx));
    let e = tf.mul(c, gate);
    if (reduce) e = reduce(e, ctx);
    return { image: img, landmark: lm, fused, tokens, embedding: e as tf.Tensor2D };
  }

  return {
    config: cfg,
    name,
    paramCount: countParams(store, `${name}.`),
    macsPerFace: b.cost.macs,
    taps,
    forward: (x, ctx = INFER) => taps(x, ctx).embedding,
  };
}
