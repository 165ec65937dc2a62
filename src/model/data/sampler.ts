/**
 * ARBEx data refinement (docs/MODEL-SPEC.md section 7): each epoch, from every group (video or
 * identity) keep up to `perGroup` records at random, pool them, then draw `perClass` records of
 * every class, giving a class-balanced epoch of perClass * L records. With `balance: false` the
 * pooled records themselves, shuffled, are the epoch (the data set's own class frequencies).
 */
import { seededRandom } from '../nn/params.js';
import type { DataRecord, Dataset } from './types.js';

export interface RefineOptions {
  /** N: most records kept from one group per epoch (paper: 512). */
  perGroup?: number;
  /** M: records drawn per class per epoch (paper: 500). */
  perClass?: number;
  /** Epoch e uses the generator seeded with seed + e, so any epoch can be redrawn alone. */
  seed?: number;
  /** true: perClass records of every class; false: every pooled record once (perClass unused). */
  balance?: boolean;
}

export interface RefinedEpoch {
  /** perClass records of each class that has any (or, unbalanced, every pooled record), in random order. */
  records: DataRecord[];
  /** Records available per class after the group cap (before balancing). */
  pooled: number[];
  /** Classes with no record at all this epoch (absent from `records`). */
  emptyClasses: number[];
}

export interface RefineSampler {
  epoch(epoch: number): Promise<RefinedEpoch>;
}

const DEFAULTS = { perGroup: 512, perClass: 500, seed: 0, balance: true };

/**
 * Makes the per-epoch sampler over a data set. The group cap uses reservoir sampling while the
 * records stream past, so memory holds at most perGroup records per group. A class with fewer
 * than perClass pooled records contributes each of them once plus draws with replacement for
 * the rest (so every available image is seen); a class with more is drawn without replacement.
 *
 * @example
 * const sampler = refineSampler(ds, { perGroup: 512, perClass: 500, seed: 7 });
 * const { records } = await sampler.epoch(0); // 500 * ds.classes.length records
 */
export function refineSampler(dataset: Pick<Dataset, 'classes' | 'records'>, options: RefineOptions = {}): RefineSampler {
  const { perGroup, perClass, seed, balance } = { ...DEFAULTS, ...options };
  if (!(perGroup >= 1 && perClass >= 1)) throw new Error('perGroup and perClass must be at least 1');
  const numClasses = dataset.classes.length;
  return {
    async epoch(epoch) {
      const rng = seededRandom(seed + epoch);
      const groups = new Map<string, { seen: number; kept: DataRecord[] }>();
      for await (const r of dataset.records()) {
        let g = groups.get(r.group);
        if (!g) groups.set(r.group, (g = { seen: 0, kept: [] }));
        g.seen++;
        if (g.kept.length < perGroup) g.kept.push(r);
        else {
          const j = Math.floor(rng() * g.seen);
          if (j < perGroup) g.kept[j] = r;
        }
      }
      const byClass: DataRecord[][] = Array.from({ length: numClasses }, () => []);
      for (const g of groups.values()) for (const r of g.kept) byClass[r.label].push(r);
      const records: DataRecord[] = [];
      const emptyClasses: number[] = [];
      byClass.forEach((pool, c) => {
        if (pool.length === 0) emptyClasses.push(c);
        else records.push(...(balance ? drawBalanced(pool, perClass, rng) : pool));
      });
      shuffleInPlace(records, rng);
      return { records, pooled: byClass.map((p) => p.length), emptyClasses };
    },
  };
}

/** m records from pool: without replacement when it has enough, else all of it plus repeats. */
function drawBalanced(pool: DataRecord[], m: number, rng: () => number): DataRecord[] {
  if (pool.length >= m) {
    const copy = pool.slice();
    // Partial Fisher-Yates: the first m places end up a uniform sample without replacement.
    for (let i = 0; i < m; i++) {
      const j = i + Math.floor(rng() * (copy.length - i));
      [copy[i], copy[j]] = [copy[j], copy[i]];
    }
    return copy.slice(0, m);
  }
  const out = pool.slice();
  while (out.length < m) out.push(pool[Math.floor(rng() * pool.length)]);
  return out;
}

/** Fisher-Yates shuffle with the given generator. */
export function shuffleInPlace<T>(items: T[], rng: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}
