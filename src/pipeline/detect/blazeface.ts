/**
 * BlazeFace (MediaPipe's 256x256 "back camera" short-range detector, as shipped in
 * @vladmandic/human/models/blazeface.json): letterboxed input, anchor decoding and weighted NMS.
 *
 * The graph has four outputs: scores and regressors for 512 anchors on a 16x16 grid (stride 16,
 * two anchors a cell) and for 384 anchors on an 8x8 grid (stride 32, six a cell). Each regressor
 * row is [dx, dy, w, h, then 6 keypoints as (dx, dy)] in input pixels, offsets from the anchor
 * centre; scores are logits.
 */
import * as tf from '@tensorflow/tfjs';
import { warpAffine, type Affine, type RgbImage } from '../align/index.js';
import type { Box } from '../types.js';
import { boxIou } from './boxes.js';

export const BLAZEFACE_SIZE = 256;
const KEYPOINTS = 6;

/** One BlazeFace detection in image pixels. */
export interface Detection {
  box: Box;
  score: number;
  /** Right eye, left eye (the subject's: image left, image right), nose tip, mouth centre, right ear, left ear. */
  keypoints: [number, number][];
}

/** Anchor centres in input pixels, in the order the graph's concatenated outputs use. */
export function blazefaceAnchors(size = BLAZEFACE_SIZE): Float32Array {
  const layers = [{ stride: 16, perCell: 2 }, { stride: 32, perCell: 6 }];
  const out: number[] = [];
  for (const { stride, perCell } of layers) {
    const cells = Math.ceil(size / stride);
    for (let y = 0; y < cells; y++) {
      for (let x = 0; x < cells; x++) {
        for (let k = 0; k < perCell; k++) out.push(stride * (x + 0.5), stride * (y + 0.5));
      }
    }
  }
  return new Float32Array(out);
}

/**
 * Maps input-pixel indices of the square letterboxed BlazeFace input back to frame pixels
 * (the frame is centred, keeping its aspect ratio, as MediaPipe does).
 */
export function letterbox(width: number, height: number, size = BLAZEFACE_SIZE): Affine {
  const side = Math.max(width, height);
  const s = side / size;
  // Index u has its centre at u + 0.5 on the continuous input; frame pixel centres sit at integers.
  return [s, 0, 0.5 * s - (side - width) / 2 - 0.5, 0, s, 0.5 * s - (side - height) / 2 - 0.5];
}

/** Greedy NMS that averages each kept box with the boxes it suppresses, weighted by score. */
export function weightedNms(dets: Detection[], iouThreshold: number, maxCount: number): Detection[] {
  const rest = [...dets].sort((a, b) => b.score - a.score);
  const kept: Detection[] = [];
  while (rest.length > 0 && kept.length < maxCount) {
    const top = rest[0];
    const group: Detection[] = [];
    for (let i = rest.length - 1; i >= 0; i--) {
      if (i === 0 || boxIou(top.box, rest[i].box) > iouThreshold) group.push(...rest.splice(i, 1));
    }
    let wsum = 0;
    const box = { x: 0, y: 0, w: 0, h: 0 };
    const kps = top.keypoints.map(() => [0, 0] as [number, number]);
    for (const d of group) {
      wsum += d.score;
      box.x += d.box.x * d.score; box.y += d.box.y * d.score;
      box.w += d.box.w * d.score; box.h += d.box.h * d.score;
      d.keypoints.forEach((p, k) => { kps[k][0] += p[0] * d.score; kps[k][1] += p[1] * d.score; });
    }
    kept.push({
      box: { x: box.x / wsum, y: box.y / wsum, w: box.w / wsum, h: box.h / wsum },
      score: top.score,
      keypoints: kps.map(([x, y]) => [x / wsum, y / wsum]),
    });
  }
  return kept;
}

/** Decodes raw scores (logits) and regressors into frame-pixel detections above minScore. */
export function decodeBlazeface(scores: Float32Array, regressors: Float32Array, anchors: Float32Array, toFrame: Affine, minScore: number): Detection[] {
  const n = anchors.length / 2;
  const stride = 4 + 2 * KEYPOINTS;
  if (scores.length !== n || regressors.length !== n * stride) throw new Error(`BlazeFace: expected ${n} anchors, got ${scores.length} scores`);
  // Compare logits instead of calling exp on all 896 anchors.
  const minLogit = Math.log(minScore / (1 - minScore));
  const [s, , tx, , , ty] = toFrame;
  const out: Detection[] = [];
  for (let i = 0; i < n; i++) {
    if (!(scores[i] >= minLogit)) continue;
    const r = i * stride;
    const ax = anchors[2 * i], ay = anchors[2 * i + 1];
    const cx = ax + regressors[r], cy = ay + regressors[r + 1];
    const w = regressors[r + 2], h = regressors[r + 3];
    const keypoints: [number, number][] = [];
    for (let k = 0; k < KEYPOINTS; k++) {
      // Continuous input coordinates: subtract the half pixel that letterbox() adds for indices.
      keypoints.push([s * (ax + regressors[r + 4 + 2 * k] - 0.5) + tx, s * (ay + regressors[r + 5 + 2 * k] - 0.5) + ty]);
    }
    out.push({
      box: { x: s * (cx - w / 2 - 0.5) + tx, y: s * (cy - h / 2 - 0.5) + ty, w: s * w, h: s * h },
      score: 1 / (1 + Math.exp(-Math.min(100, Math.max(-100, scores[i])))),
      keypoints,
    });
  }
  return out;
}

export interface BlazefaceOptions {
  minScore: number;
  iouThreshold: number;
  maxFaces: number;
}

/** The letterboxed 256x256 input of one frame (RGB floats 0..255) and the map from its indices back to the frame. */
export function blazefaceInput(frame: RgbImage): { pixels: Float32Array; toFrame: Affine } {
  const toFrame = letterbox(frame.width, frame.height);
  const pixels = warpAffine(frame, toFrame, BLAZEFACE_SIZE, BLAZEFACE_SIZE, new Float32Array(BLAZEFACE_SIZE * BLAZEFACE_SIZE * 3));
  return { pixels, toFrame };
}

/** The graph's raw outputs for one input: 896 score logits and 896 x 16 regressors, anchors in blazefaceAnchors() order. */
export interface BlazefaceRaw {
  scores: Float32Array;
  regressors: Float32Array;
}

/**
 * Runs the graph on one blazefaceInput() (in this thread, or in a detector worker: the same
 * function either way); every tensor it creates is disposed before it returns.
 */
export async function executeBlazeface(model: tf.GraphModel, pixels: Float32Array): Promise<BlazefaceRaw> {
  const input = tf.tidy(() => tf.tensor4d(pixels, [1, BLAZEFACE_SIZE, BLAZEFACE_SIZE, 3]).div(127.5).sub(1));
  const outputs = model.execute(input) as tf.Tensor[];
  input.dispose();
  try {
    // Output order is not part of the graph's contract; identify the heads by shape.
    const byAnchors = (rows: number, cols: number) => {
      const t = outputs.find((o) => o.shape[1] === rows && o.shape[2] === cols);
      if (!t) throw new Error(`BlazeFace: no [1, ${rows}, ${cols}] output`);
      return t;
    };
    const [s512, s384, r512, r384] = await Promise.all([
      byAnchors(512, 1).data(), byAnchors(384, 1).data(), byAnchors(512, 16).data(), byAnchors(384, 16).data(),
    ]);
    const scores = new Float32Array(896);
    scores.set(s512 as Float32Array, 0);
    scores.set(s384 as Float32Array, 512);
    const regressors = new Float32Array(896 * 16);
    regressors.set(r512 as Float32Array, 0);
    regressors.set(r384 as Float32Array, 512 * 16);
    return { scores, regressors };
  } finally {
    tf.dispose(outputs);
  }
}

/** Decoding and NMS of the graph's raw outputs for a frame. */
export function blazefaceDetections(raw: BlazefaceRaw, anchors: Float32Array, toFrame: Affine, opts: BlazefaceOptions): Detection[] {
  const dets = decodeBlazeface(raw.scores, raw.regressors, anchors, toFrame, opts.minScore);
  return weightedNms(dets, opts.iouThreshold, opts.maxFaces);
}

/** Runs the detector on one frame; every tensor it creates is disposed before it returns. */
export async function runBlazeface(model: tf.GraphModel, anchors: Float32Array, frame: RgbImage, opts: BlazefaceOptions): Promise<Detection[]> {
  const { pixels, toFrame } = blazefaceInput(frame);
  return blazefaceDetections(await executeBlazeface(model, pixels), anchors, toFrame, opts);
}
