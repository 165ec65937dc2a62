/**
 * The compact residual CNN extractor (`kind: "cnn"`): the image stream of arbex's default
 * real-face model. It takes the face as one grey channel at FER2013's 48x48, so that training on
 * FER2013 and inference on colour video see the same input:
 *   grey = 0.299 R + 0.587 G + 0.114 B, normalised with fixed constants
 *   stem: conv3x3 → BN → ReLU
 *   stages of ResNet basic blocks: conv3x3(stride) → BN → ReLU → conv3x3 → BN, plus a shortcut
 *   (conv1x1(stride) → BN when the shape changes), then ReLU; every stage after the first
 *   starts with stride 2
 *   e = global average of the last stage (D = the last width).
 * The layout mirrors `reference/torch/fer_cnn.py` parameter for parameter, so weights trained
 * there import one to one (test/extractor/cnn.test.ts checks the two agree).
 */
import * as tf from '@tensorflow/tfjs';
import { INFER, sequential, type Layer } from '../nn/layers.js';
import { countParams, setTrainable, type ParamStore } from '../nn/params.js';
import { fusedConvBn, outSide, type Build } from './parts.js';

export interface CnnConfig {
  kind: 'cnn';
  /** Side of the square RGB input, values in [0, 1]. */
  inputSize: number;
  /** Grey normalisation: (grey - greyMean) / greyStd. */
  greyMean: number;
  greyStd: number;
  stemWidth: number;
  /** Width and number of basic blocks of each stage. */
  widths: number[];
  depths: number[];
  /** Size D of the embedding: the last stage's width. */
  embedDim: number;
  frozen: { image: boolean };
  /**
   * 'average': e is the mean of the embeddings of the face and of its mirror image (left-right
   * flip), so the output does not depend on which way the face is mirrored; costs twice the
   * compute. 'none' (default): the face alone.
   */
  mirror: 'none' | 'average';
}

/** BT.601 luma weights: FER2013's greyscale, and what colour crops are reduced with. */
export const LUMA = [0.299, 0.587, 0.114] as const;

function fail(field: string, msg: string): never {
  throw new Error(`invalid extractor config: ${field} ${msg}`);
}

function posInt(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(field, `must be a positive integer (got ${JSON.stringify(v)})`);
  return v;
}

function intList(v: unknown, field: string): number[] {
  if (!Array.isArray(v) || v.length === 0) fail(field, `must be a non-empty array of positive integers (got ${JSON.stringify(v)})`);
  return v.map((x, i) => posInt(x, `${field}[${i}]`));
}

/** Checks a `kind: "cnn"` config; returns a clean copy. */
export function validateCnnConfig(c: Record<string, unknown>): CnnConfig {
  const known = ['kind', 'inputSize', 'greyMean', 'greyStd', 'stemWidth', 'widths', 'depths', 'embedDim', 'frozen', 'mirror'];
  for (const key of Object.keys(c)) if (!known.includes(key)) fail(key, `is not a setting of the cnn extractor (${known.join(', ')})`);
  const frozen = c.frozen as Record<string, unknown> | undefined;
  const num = (v: unknown, field: string) => (typeof v === 'number' && Number.isFinite(v) ? v : fail(field, 'must be a number'));
  const cfg: CnnConfig = {
    kind: 'cnn',
    inputSize: posInt(c.inputSize, 'inputSize'),
    greyMean: num(c.greyMean, 'greyMean'),
    greyStd: num(c.greyStd, 'greyStd') > 0 ? (c.greyStd as number) : fail('greyStd', 'must be positive'),
    stemWidth: posInt(c.stemWidth, 'stemWidth'),
    widths: intList(c.widths, 'widths'),
    depths: intList(c.depths, 'depths'),
    embedDim: posInt(c.embedDim, 'embedDim'),
    frozen: { image: typeof frozen?.image === 'boolean' ? frozen.image : fail('frozen.image', 'must be a boolean') },
    mirror: c.mirror === undefined || c.mirror === 'none' || c.mirror === 'average' ? ((c.mirror as CnnConfig['mirror'] | undefined) ?? 'none') : fail('mirror', `must be "none" or "average" (got ${JSON.stringify(c.mirror)})`),
  };
  if (cfg.depths.length !== cfg.widths.length) fail('depths', `must have one entry per stage (${cfg.widths.length}), got ${cfg.depths.length}`);
  if (cfg.embedDim !== cfg.widths.at(-1)) fail('embedDim', `must equal the last width (${cfg.widths.at(-1)}), got ${cfg.embedDim}`);
  return cfg;
}

function basicBlock(b: Build, name: string, inCh: number, outCh: number, stride: 1 | 2, side: number): Layer {
  const out = outSide(side, stride);
  const res = sequential(
    fusedConvBn(b, { conv: `${name}.conv1`, bn: `${name}.bn1`, act: 'relu' }, { inCh, outCh, kernel: 3, stride, side }),
    fusedConvBn(b, { conv: `${name}.conv2`, bn: `${name}.bn2` }, { inCh: outCh, outCh, kernel: 3, side: out }),
  );
  const shortcut: Layer =
    inCh !== outCh || stride !== 1 ? fusedConvBn(b, { conv: `${name}.shortcut.conv`, bn: `${name}.shortcut.bn` }, { inCh, outCh, kernel: 1, stride, side }) : (x) => x;
  return (x, ctx) => tf.relu(tf.add(res(x, ctx), shortcut(x, ctx)));
}

/**
 * Builds the CNN's variables under `name` and returns its forward function:
 * [B, S, S, 3] RGB in [0, 1] → [B, D].
 * @example
 *   const fx = createCnnExtractor(createParams(1), validateCnnConfig(PRESETS.fer), 'extractor');
 *   const e = tf.tidy(() => fx.forward(images));   // [B, 192]
 */
export function createCnnExtractor(store: ParamStore, cfg: CnnConfig, name: string) {
  const b: Build = { store, cost: { macs: 0 } };
  let side = cfg.inputSize;
  const stem = fusedConvBn(b, { conv: `${name}.stem.conv`, bn: `${name}.stem.bn`, act: 'relu' }, { inCh: 1, outCh: cfg.stemWidth, kernel: 3, side });
  const blocks: Layer[] = [];
  let inCh = cfg.stemWidth;
  cfg.widths.forEach((width, s) => {
    for (let i = 0; i < cfg.depths[s]!; i++) {
      const stride = i === 0 && s > 0 ? 2 : 1;
      blocks.push(basicBlock(b, `${name}.stage${s + 1}.${i}`, inCh, width, stride, side));
      side = outSide(side, stride);
      inCh = width;
    }
  });
  const body = sequential(stem, ...blocks);
  setTrainable(store, `${name}.`, !cfg.frozen.image);
  const forward = (x: tf.Tensor4D, ctx = INFER): tf.Tensor2D => {
    const [, h, w, ch] = x.shape;
    if (h !== cfg.inputSize || w !== cfg.inputSize || ch !== 3) {
      throw new Error(`extractor expects [B, ${cfg.inputSize}, ${cfg.inputSize}, 3] input, got [${x.shape.join(', ')}]`);
    }
    const grey = tf.sum(tf.mul(x, tf.tensor1d([...LUMA])), -1, true);
    const normed = tf.div(tf.sub(grey, cfg.greyMean), cfg.greyStd);
    const ctxImage = cfg.frozen.image ? INFER : ctx;
    if (cfg.mirror === 'none') return tf.mean(body(normed, ctxImage), [1, 2]) as tf.Tensor2D;
    // One pass over [faces; mirrored faces], then the mean of each face's two embeddings.
    const both = tf.mean(body(tf.concat([normed, tf.reverse(normed, 2)], 0), ctxImage), [1, 2]) as tf.Tensor2D;
    const [e, eMirror] = tf.split(both, 2, 0);
    return tf.mul(tf.add(e!, eMirror!), 0.5);
  };
  return { paramCount: countParams(store, `${name}.`), macsPerFace: b.cost.macs * (cfg.mirror === 'average' ? 2 : 1), forward };
}
