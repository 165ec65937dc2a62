/**
 * Seeded randomness. Every random choice in the generator comes from an Rng derived from the
 * dataset seed plus the item's coordinates (identity, class, index), so one image never depends on
 * how many others were drawn before it or in which order.
 */

import { seededRandom } from '../../nn/params.js';

export type Rng = () => number;

/** 32-bit FNV-1a over the parts, then a murmur3 finaliser so near-equal inputs diverge. */
export function hashSeed(...parts: (number | string)[]): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    const s = `${String(part)}\u0000`;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A uniform [0, 1) generator seeded by the hash of the parts (mulberry32, as for weight init). */
export function createRng(...seedParts: (number | string)[]): Rng {
  return seededRandom(hashSeed(...seedParts));
}

export const uniform = (rng: Rng, lo: number, hi: number): number => lo + (hi - lo) * rng();

export const randInt = (rng: Rng, n: number): number => Math.floor(rng() * n);

export const pick = <T>(rng: Rng, items: readonly T[]): T => items[randInt(rng, items.length)];

/** Standard normal by Box-Muller (one value per call keeps the stream simple to reason about). */
export function normal(rng: Rng): number {
  const u = 1 - rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** Fisher-Yates on a copy. */
export function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
