/**
 * Face alignment: a least-squares similarity transform from five landmarks onto the ArcFace
 * template, and a bilinear affine warp of packed RGB images in plain JS.
 *
 * Coordinates follow the OpenCV convention: pixel (i, j) has its centre at (i, j). The warp is
 * also what the detector uses to cut its (rotated) BlazeFace and FaceMesh inputs.
 *
 * @example
 * const crop = alignFace(frame, face.landmarks5, 112); // 112*112*3 RGB bytes, eyes on the template
 */
import type { CropTemplate } from '../../model/types.js';
import type { Landmarks5 } from '../types.js';

/** Row-major 2x3 affine matrix [a, b, c, d, e, f]: x' = a x + b y + c, y' = d x + e y + f. */
export type Affine = [number, number, number, number, number, number];

/** Anything with packed RGB pixels; a pipeline `Frame` fits. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** The standard 112x112 ArcFace five-point template (left eye, right eye, nose, mouth left, mouth right). */
export const ARCFACE_TEMPLATE: Landmarks5 = [
  [38.2946, 51.6963],
  [73.5318, 51.5014],
  [56.0252, 71.7366],
  [41.5493, 92.3655],
  [70.7299, 92.2041],
];

/** The ArcFace template scaled to an S x S crop (the template is defined for S = 112). */
export function arcfaceTemplate(size: number): Landmarks5 {
  const k = size / 112;
  return ARCFACE_TEMPLATE.map(([x, y]) => [x * k, y * k]);
}

/**
 * Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping `src`
 * onto `dst`. This is Umeyama's solution specialised to 2-D, where the SVD has a closed form.
 */
export function similarityTransform(src: readonly (readonly [number, number])[], dst: readonly (readonly [number, number])[]): Affine {
  const n = src.length;
  if (n < 2 || dst.length !== n) throw new Error(`similarityTransform needs >= 2 matching points (got ${n} and ${dst.length})`);
  let msx = 0, msy = 0, mdx = 0, mdy = 0;
  for (let i = 0; i < n; i++) {
    msx += src[i][0]; msy += src[i][1];
    mdx += dst[i][0]; mdy += dst[i][1];
  }
  msx /= n; msy /= n; mdx /= n; mdy /= n;
  let dot = 0, cross = 0, norm = 0;
  for (let i = 0; i < n; i++) {
    const sx = src[i][0] - msx, sy = src[i][1] - msy;
    const dx = dst[i][0] - mdx, dy = dst[i][1] - mdy;
    dot += sx * dx + sy * dy;
    cross += sx * dy - sy * dx;
    norm += sx * sx + sy * sy;
  }
  if (norm === 0) throw new Error('similarityTransform: source points are all identical');
  const a = dot / norm; // s * cos(theta)
  const b = cross / norm; // s * sin(theta)
  return [a, -b, mdx - (a * msx - b * msy), b, a, mdy - (b * msx + a * msy)];
}

export function invertAffine(m: Affine): Affine {
  const [a, b, c, d, e, f] = m;
  const det = a * e - b * d;
  if (det === 0) throw new Error('invertAffine: singular matrix');
  const ia = e / det, ib = -b / det, id = -d / det, ie = a / det;
  return [ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)];
}

/** m1 after m2 (apply m2 first). */
export function composeAffine(m1: Affine, m2: Affine): Affine {
  const [a, b, c, d, e, f] = m1;
  const [A, B, C, D, E, F] = m2;
  return [a * A + b * D, a * B + b * E, a * C + b * F + c, d * A + e * D, d * B + e * E, d * C + e * F + f];
}

export function applyAffine(m: Affine, x: number, y: number): [number, number] {
  return [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]];
}

/**
 * Fills `out` (outW*outH*3, RGB) by sampling `src` bilinearly at `toSrc(u, v)` for each output
 * pixel (u, v); samples outside the image read as black. Uint8 outputs are rounded, float
 * outputs keep the 0-255 interpolated values (the caller normalises).
 */
export function warpAffine<T extends Uint8Array | Float32Array>(src: RgbImage, toSrc: Affine, outW: number, outH: number, out: T): T {
  if (out.length < outW * outH * 3) throw new Error(`warpAffine: output holds ${out.length} values, needs ${outW * outH * 3}`);
  const { width: W, height: H, data } = src;
  const round = out instanceof Uint8Array ? 0.5 : 0;
  const [a, b, c, d, e, f] = toSrc;
  const stride = W * 3;
  let o = 0;
  for (let v = 0; v < outH; v++) {
    // Stepping along a row only adds (a, d), so start each row once and accumulate.
    let x = b * v + c;
    let y = e * v + f;
    for (let u = 0; u < outW; u++, x += a, y += d, o += 3) {
      const x0 = Math.floor(x), y0 = Math.floor(y);
      const fx = x - x0, fy = y - y0;
      if (x0 >= 0 && y0 >= 0 && x0 < W - 1 && y0 < H - 1) {
        const p = y0 * stride + x0 * 3;
        const w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
        out[o] = data[p] * w00 + data[p + 3] * w01 + data[p + stride] * w10 + data[p + stride + 3] * w11 + round;
        out[o + 1] = data[p + 1] * w00 + data[p + 4] * w01 + data[p + stride + 1] * w10 + data[p + stride + 4] * w11 + round;
        out[o + 2] = data[p + 2] * w00 + data[p + 5] * w01 + data[p + stride + 2] * w10 + data[p + stride + 5] * w11 + round;
      } else if (x0 < -1 || y0 < -1 || x0 >= W || y0 >= H) {
        out[o] = 0; out[o + 1] = 0; out[o + 2] = 0;
      } else {
        // Border: only some of the four neighbours exist; the missing ones count as black.
        let r = 0, g = 0, bl = 0;
        for (let k = 0; k < 4; k++) {
          const xi = x0 + (k & 1), yi = y0 + (k >> 1);
          if (xi < 0 || yi < 0 || xi >= W || yi >= H) continue;
          const w = (k & 1 ? fx : 1 - fx) * (k >> 1 ? fy : 1 - fy);
          const p = yi * stride + xi * 3;
          r += data[p] * w; g += data[p + 1] * w; bl += data[p + 2] * w;
        }
        out[o] = r + round; out[o + 1] = g + round; out[o + 2] = bl + round;
      }
    }
  }
  return out;
}

/** The transform that takes image points onto the size x size ArcFace template. */
export function alignmentTransform(landmarks5: Landmarks5, size: number): Affine {
  if (landmarks5.length !== 5) throw new Error(`alignFace needs 5 landmarks (got ${landmarks5.length})`);
  return similarityTransform(landmarks5, arcfaceTemplate(size));
}

/** Cuts an aligned size x size x 3 RGB crop (row-major HWC bytes) of the face with these five points. */
export function alignFace(frame: RgbImage, landmarks5: Landmarks5, size: number): Uint8Array {
  const toSrc = invertAffine(alignmentTransform(landmarks5, size));
  return warpAffine(frame, toSrc, size, size, new Uint8Array(size * size * 3));
}

/**
 * The crop a model takes of a face: its five points moved onto the model's crop template (the
 * framing it was trained on), or onto the ArcFace template when the model names none.
 *
 * @example
 * const crop = cropFace(frame, face.landmarks5, model); // model.inputSize² x 3 RGB bytes
 */
export function cropFace(frame: RgbImage, landmarks5: Landmarks5, model: { inputSize: number; cropTemplate?: CropTemplate }): Uint8Array {
  const size = model.inputSize;
  if (!model.cropTemplate) return alignFace(frame, landmarks5, size);
  if (landmarks5.length !== 5) throw new Error(`cropFace needs 5 landmarks (got ${landmarks5.length})`);
  const dst = model.cropTemplate.map(([x, y]) => [x * size, y * size] as const);
  const toSrc = invertAffine(similarityTransform(landmarks5, dst));
  return warpAffine(frame, toSrc, size, size, new Uint8Array(size * size * 3));
}
