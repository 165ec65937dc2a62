/** Identity-disjoint splits: no person appears in more than one of train / val / test. */
import { createRng, shuffled } from './rng.js';

export const SPLIT_NAMES = ['train', 'val', 'test'] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

export type SplitFractions = Record<SplitName, number>;

export const DEFAULT_SPLITS: SplitFractions = { train: 0.7, val: 0.15, test: 0.15 };

/**
 * Cuts n items into split counts proportional to the fractions (normalised). With `atLeastOne`,
 * every split with a positive fraction gets one item or more (identities need that; videos do not).
 */
export function allocate(n: number, fractions: SplitFractions, atLeastOne: boolean): Record<SplitName, number> {
  const active = SPLIT_NAMES.filter((s) => fractions[s] > 0);
  if (active.length === 0) throw new Error('at least one split fraction must be positive');
  if (atLeastOne && n < active.length) throw new Error(`${n} identities cannot fill ${active.length} splits`);
  const total = active.reduce((a, s) => a + fractions[s], 0);
  const counts = Object.fromEntries(SPLIT_NAMES.map((s) => [s, 0])) as Record<SplitName, number>;
  for (const s of active) counts[s] = Math.max(atLeastOne ? 1 : 0, Math.floor((n * fractions[s]) / total));
  // Hand out (or take back) the rounding remainder, largest split first.
  const bySize = [...active].sort((a, b) => fractions[b] - fractions[a]);
  let left = n - active.reduce((a, s) => a + counts[s], 0);
  for (let i = 0; left !== 0; i = (i + 1) % bySize.length) {
    const s = bySize[i];
    if (left > 0) {
      counts[s]++;
      left--;
    } else if (counts[s] > (atLeastOne ? 1 : 0)) {
      counts[s]--;
      left++;
    }
  }
  return counts;
}

/**
 * Shuffles identity indices 0..n-1 with the seed and cuts them by the fractions.
 * @example splitIdentities(20, DEFAULT_SPLITS, 1) // { train: [...14], val: [...3], test: [...3] }
 */
export function splitIdentities(n: number, fractions: SplitFractions, seed: number): Record<SplitName, number[]> {
  const counts = allocate(n, fractions, true);
  const order = shuffled(createRng('splits', seed), Array.from({ length: n }, (_, i) => i));
  const out = {} as Record<SplitName, number[]>;
  let at = 0;
  for (const s of SPLIT_NAMES) {
    out[s] = order.slice(at, at + counts[s]).sort((a, b) => a - b);
    at += counts[s];
  }
  return out;
}
