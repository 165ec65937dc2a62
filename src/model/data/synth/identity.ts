/**
 * Who is drawn: everything about a face that stays fixed while its expression, pose and lighting
 * change. An identity is sampled once from a seed and reused for all of its images and videos.
 */
import { createRng, pick, uniform, type Rng } from './rng.js';

export const HAIR_STYLES = ['short', 'long', 'bob', 'bun', 'spiky', 'curly', 'sidepart', 'bald'] as const;
export type HairStyle = (typeof HAIR_STYLES)[number];

export const NOSE_STYLES = ['button', 'hook', 'wide'] as const;
export type NoseStyle = (typeof NOSE_STYLES)[number];

export interface Identity {
  id: string;
  /** Half-width and half-height of the head in the 100-unit canvas. */
  faceRx: number;
  faceRy: number;
  /** 0.3 = pointed chin, 0.9 = square jaw. */
  jaw: number;
  skin: string;
  hairStyle: HairStyle;
  hair: string;
  /** Horizontal distance of each eye from the face centre, and eye half-width/half-height. */
  eyeGap: number;
  eyeW: number;
  eyeH: number;
  iris: string;
  /** Brow stroke width and resting tilt (outer end up when positive). */
  browWeight: number;
  browTilt: number;
  noseStyle: NoseStyle;
  noseSize: number;
  earSize: number;
  mouthW: number;
  lip: string;
  /** Resting mouth curve: some characters look slightly smiley or sulky at rest. */
  restCurve: number;
  shirt: string;
  collar: 'round' | 'v';
  background: string;
  glasses: boolean;
}

// Skin tones from very light to very dark. Backgrounds are pale on purpose: a dark skin then stands
// out by luminance, and a light one by the darker outline stroke drawn around every head.
const SKINS = ['#ffe0c7', '#f6cfae', '#eab68d', '#d89a6a', '#b97a4e', '#8d5a36', '#6b4226', '#f3d2b8', '#c68e64', '#9e6b45'];
const HAIRS = ['#1d1412', '#3b2417', '#6a4023', '#a8652f', '#d9a957', '#e8d4a0', '#8a8a8a', '#b23a22', '#3a3f74', '#5b2a5e'];
const IRISES = ['#3b2a1d', '#5a3a22', '#2f6f9f', '#3f7d4e', '#6b7b86', '#1c1c1c'];
const SHIRTS = ['#3057a8', '#b03a48', '#2f8f5b', '#d9a441', '#6b4fa0', '#333844', '#e0e0e0', '#1f9aa6', '#c25e2c'];
const BACKGROUNDS = ['#cfe3f2', '#e8e2cf', '#d6ecd3', '#f2d7d9', '#dcd6f0', '#a9c7de', '#e9e9e9', '#c4d9c0', '#f5e6b8', '#9fb4c7'];

/** Multiplies an #rrggbb colour by f (below 1 darkens). Used for outlines, lips and shading. */
export function shade(hex: string, f: number): string {
  const n = parseInt(hex.slice(1), 16);
  const c = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map((v) => Math.max(0, Math.min(255, Math.round(v * f))));
  return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

function sampleWith(rng: Rng, id: string): Identity {
  const skin = pick(rng, SKINS);
  return {
    id,
    faceRx: uniform(rng, 25, 31),
    faceRy: uniform(rng, 31, 36),
    jaw: uniform(rng, 0.35, 0.85),
    skin,
    hairStyle: pick(rng, HAIR_STYLES),
    hair: pick(rng, HAIRS),
    eyeGap: uniform(rng, 11, 13),
    eyeW: uniform(rng, 6, 7.5),
    eyeH: uniform(rng, 3.2, 4.2),
    iris: pick(rng, IRISES),
    browWeight: uniform(rng, 2, 3),
    browTilt: uniform(rng, -0.4, 0.6),
    noseStyle: pick(rng, NOSE_STYLES),
    noseSize: uniform(rng, 0.85, 1.2),
    earSize: uniform(rng, 0.8, 1.2),
    mouthW: uniform(rng, 16, 21),
    lip: shade(skin, uniform(rng, 0.62, 0.75)),
    restCurve: uniform(rng, -0.12, 0.12),
    shirt: pick(rng, SHIRTS),
    collar: rng() < 0.5 ? 'round' : 'v',
    background: pick(rng, BACKGROUNDS),
    glasses: rng() < 0.1,
  };
}

/** Samples identity `index` of the dataset with seed `seed`; the same pair always gives the same face. */
export function sampleIdentity(seed: number, index: number): Identity {
  return sampleWith(createRng('identity', seed, index), `id${String(index).padStart(4, '0')}`);
}
