/**
 * Training augmentation in plain JS (docs/MODEL-SPEC.md section 7): bilinear resize to a larger size,
 * random crop to the model size, horizontal flip, small rotation, colour jitter, Gaussian noise.
 * Resize, crop, flip and rotation are one inverse mapping sampled bilinearly, so each output
 * pixel is interpolated once. Plain JS is about twice as fast as the same steps as batched tf ops
 * on wasm (measured at 128 -> 112, batch 32, CPU time per image: 2.8 ms here, 5.8 ms with
 * tf.image.transform + jitter + tf.randomNormal), and it keeps the loader free of tensors.
 *
 * Images are square, RGB, row-major HWC: Uint8Array in 0..255 or Float32Array in [0, 1].
 * Outputs are Float32Array in [0, 1].
 */
import { seededRandom } from '../nn/params.js';

export interface AugmentOptions {
  /** Model input side S. */
  size: number;
  /** Side the image is resized to before the random crop (paper: 256 for 224). */
  resize?: number;
  /** Probability of a horizontal flip. */
  flip?: number;
  /** Largest rotation, degrees either way. */
  rotate?: number;
  /** Brightness, contrast and saturation factors are drawn from [1 - x, 1 + x]. */
  brightness?: number;
  contrast?: number;
  saturation?: number;
  /** Standard deviation of the additive Gaussian noise, in [0, 1] pixel units. */
  noise?: number;
}

/** One image's random choices; drawn by `draw`, applied by `apply`. */
export interface AugmentParams {
  /** Crop's top-left corner in the resized image. */
  cropX: number;
  cropY: number;
  flip: boolean;
  /** Rotation in radians about the crop's centre. */
  angle: number;
  brightness: number;
  contrast: number;
  saturation: number;
  /** Seed of the noise generator (0 noise when options.noise is 0). */
  noiseSeed: number;
}

export interface Augmenter {
  readonly size: number;
  readonly resize: number;
  draw(rng: () => number): AugmentParams;
  apply(image: Uint8Array | Float32Array, params: AugmentParams): Float32Array;
  /** draw + apply. */
  train(image: Uint8Array | Float32Array, rng: () => number): Float32Array;
  /** Evaluation path: bilinear resize to size * size, nothing random. */
  eval(image: Uint8Array | Float32Array): Float32Array;
}

/** Settings left out of AugmentOptions (resize defaults to size * 256 / 224). */
export const AUGMENT_DEFAULTS = { flip: 0.5, rotate: 10, brightness: 0.2, contrast: 0.2, saturation: 0.2, noise: 0.02 };

/**
 * Makes an augmenter for a model input size. The input image may have any side; it is
 * treated as resized to `resize` first (load it at `resize` to skip that step).
 *
 * @example
 * const aug = createAugmenter({ size: 112 }); // resize 128, crop 112
 * const x = aug.train(await ds.load(record, aug.resize), seededRandom(seed));
 */
export function createAugmenter(options: AugmentOptions): Augmenter {
  const o = { ...AUGMENT_DEFAULTS, resize: Math.round((options.size * 256) / 224), ...options };
  if (o.resize < o.size) throw new Error(`resize (${o.resize}) must be at least size (${o.size})`);
  const S = o.size;
  const draw = (rng: () => number): AugmentParams => ({
    cropX: Math.floor(rng() * (o.resize - S + 1)),
    cropY: Math.floor(rng() * (o.resize - S + 1)),
    flip: rng() < o.flip,
    angle: ((rng() * 2 - 1) * o.rotate * Math.PI) / 180,
    brightness: 1 + (rng() * 2 - 1) * o.brightness,
    contrast: 1 + (rng() * 2 - 1) * o.contrast,
    saturation: 1 + (rng() * 2 - 1) * o.saturation,
    noiseSeed: Math.floor(rng() * 2 ** 32),
  });
  const apply = (image: Uint8Array | Float32Array, p: AugmentParams): Float32Array => {
    const out = warp(image, S, (inSide) => {
      // Output pixel centre (x+.5, y+.5) -> centred crop coords (u, v) -> flip -> rotate ->
      // resized image -> input image (half-pixel centres, as in every common bilinear resize).
      const k = inSide / o.resize;
      const cos = Math.cos(p.angle) * k;
      const sin = Math.sin(p.angle) * k;
      const f = p.flip ? -1 : 1;
      const h = 0.5 - S / 2;
      const cx = (p.cropX + S / 2) * k - 0.5;
      const cy = (p.cropY + S / 2) * k - 0.5;
      // x_in = cx + cos*u - sin*v, y_in = cy + sin*u + cos*v with u = f*(x+h), v = y+h.
      return [cos * f, -sin, cx + (cos * f - sin) * h, sin * f, cos, cy + (sin * f + cos) * h];
    });
    jitter(out, p, o.noise);
    return out;
  };
  return {
    size: S,
    resize: o.resize,
    draw,
    apply,
    train: (image, rng) => apply(image, draw(rng)),
    eval: (image) =>
      warp(image, S, (inSide) => {
        const k = inSide / S;
        return [k, 0, 0.5 * k - 0.5, 0, k, 0.5 * k - 0.5];
      }),
  };
}

/** Input position of output pixel (x, y): [a, b, c, d, e, f] = (a*x + b*y + c, d*x + e*y + f). */
type Affine = [number, number, number, number, number, number];

/**
 * Samples a square RGB image at out*out points given by an affine map to input pixel
 * coordinates (pixel centres at integers), bilinearly, replicating the border; scales to [0, 1].
 */
function warp(image: Uint8Array | Float32Array, out: number, mapping: (inSide: number) => Affine): Float32Array {
  const side = Math.round(Math.sqrt(image.length / 3));
  if (side * side * 3 !== image.length) throw new Error(`image of ${image.length} values is not square RGB`);
  const scale = image instanceof Uint8Array ? 1 / 255 : 1;
  const [a, b, c, d, e, f] = mapping(side);
  const dst = new Float32Array(out * out * 3);
  const last = side - 1;
  let o = 0;
  for (let y = 0; y < out; y++) {
    for (let x = 0; x < out; x++) {
      const sx = a * x + b * y + c;
      const sy = d * x + e * y + f;
      const px = sx < 0 ? 0 : sx > last ? last : sx;
      const py = sy < 0 ? 0 : sy > last ? last : sy;
      const x0 = Math.floor(px);
      const y0 = Math.floor(py);
      const x1 = x0 < last ? x0 + 1 : last;
      const y1 = y0 < last ? y0 + 1 : last;
      const fx = px - x0;
      const fy = py - y0;
      const i00 = (y0 * side + x0) * 3;
      const i01 = (y0 * side + x1) * 3;
      const i10 = (y1 * side + x0) * 3;
      const i11 = (y1 * side + x1) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const top = image[i00 + ch] + (image[i01 + ch] - image[i00 + ch]) * fx;
        const bottom = image[i10 + ch] + (image[i11 + ch] - image[i10 + ch]) * fx;
        dst[o++] = (top + (bottom - top) * fy) * scale;
      }
    }
  }
  return dst;
}

/**
 * Brightness, contrast (towards the mean grey) and saturation (towards each pixel's grey), as
 * torchvision's ColorJitter does in that order, then Gaussian noise; clamped to [0, 1].
 */
function jitter(px: Float32Array, p: AugmentParams, noise: number): void {
  let mean = 0;
  for (let i = 0; i < px.length; i += 3) {
    for (let c = 0; c < 3; c++) px[i + c] = clamp01(px[i + c] * p.brightness);
    mean += grey(px, i);
  }
  mean /= px.length / 3;
  const rng = seededRandom(p.noiseSeed);
  let spare = NaN;
  const gauss = (): number => {
    if (!Number.isNaN(spare)) {
      const s = spare;
      spare = NaN;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-12)));
    const t = 2 * Math.PI * rng();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
  for (let i = 0; i < px.length; i += 3) {
    for (let c = 0; c < 3; c++) px[i + c] = clamp01(mean + (px[i + c] - mean) * p.contrast);
    const g = grey(px, i);
    for (let c = 0; c < 3; c++) {
      const v = clamp01(g + (px[i + c] - g) * p.saturation);
      px[i + c] = noise > 0 ? clamp01(v + noise * gauss()) : v;
    }
  }
}

/** ITU-R 601 luma, as torchvision's rgb_to_grayscale. */
function grey(px: Float32Array, i: number): number {
  return 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}
