/**
 * Random but reproducible variation around a face: expression intensity, pose, lighting and noise.
 * The ranges are one options object so a caller can switch jitter off (contact sheets, tests) or
 * widen it (harder data).
 */
import { type ClassName } from './classes.js';
import { expression } from './expression.js';
import type { Identity } from './identity.js';
import type { FaceParams, Lighting, Pose } from './render.js';
import { createRng, normal, uniform, type Rng } from './rng.js';

export interface JitterOptions {
  /** Expression intensity is drawn uniformly from this range (Neutral ignores it). */
  intensity: [number, number];
  /** Maximum |roll| in degrees, |yaw| in [0, 1], relative scale change and shift (canvas units). */
  roll: number;
  yaw: number;
  scale: number;
  shift: number;
  /** Maximum lighting-gradient strength and brightness/contrast deviation from 1. */
  light: number;
  brightness: number;
  contrast: number;
  /** Maximum Gaussian pixel noise sigma (0..255 units). */
  noise: number;
}

export const DEFAULT_JITTER: JitterOptions = {
  intensity: [0.55, 1],
  roll: 12,
  yaw: 0.5,
  scale: 0.1,
  shift: 5,
  light: 0.35,
  brightness: 0.12,
  contrast: 0.15,
  noise: 8,
};

/** No variation at all: full-intensity expressions, frontal, unlit, noiseless. */
export const NO_JITTER: JitterOptions = { intensity: [1, 1], roll: 0, yaw: 0, scale: 0, shift: 0, light: 0, brightness: 0, contrast: 0, noise: 0 };

/** A value in [-max, max], concentrated towards 0 (small poses are more common than extreme ones). */
const centred = (rng: Rng, max: number): number => Math.max(-max, Math.min(max, normal(rng) * max * 0.45));

export function samplePose(rng: Rng, j: JitterOptions): Pose {
  return {
    roll: centred(rng, j.roll),
    yaw: centred(rng, j.yaw),
    scale: 1 + uniform(rng, -j.scale, j.scale),
    dx: uniform(rng, -j.shift, j.shift),
    dy: uniform(rng, -j.shift, j.shift),
  };
}

export function sampleLighting(rng: Rng, j: JitterOptions): Lighting {
  return {
    angle: uniform(rng, 0, 360),
    strength: uniform(rng, 0, j.light),
    brightness: 1 + uniform(rng, -j.brightness, j.brightness),
    contrast: 1 + uniform(rng, -j.contrast, j.contrast),
  };
}

/**
 * The parameters of image `index` of class `label` for `identity`, for dataset seed `seed`.
 * @example const p = sampleFaceParams(7, sampleIdentity(7, 3), 'Fear', 0);
 */
export function sampleFaceParams(seed: number, identity: Identity, label: ClassName, index: number, jitter: JitterOptions = DEFAULT_JITTER): FaceParams {
  const rng = createRng('sample', seed, identity.id, label, index);
  const intensity = uniform(rng, jitter.intensity[0], jitter.intensity[1]);
  const variant = rng() < 0.5 ? 'tongue' : 'puff';
  const mirrorWink = rng() < 0.5;
  return {
    identity,
    expression: expression(label, label === 'Neutral' ? 0 : intensity, variant, mirrorWink),
    pose: samplePose(rng, jitter),
    lighting: sampleLighting(rng, jitter),
    noise: uniform(rng, 0, jitter.noise),
    noiseSeed: Math.floor(rng() * 2 ** 31),
  };
}
