/**
 * Who runs which stream: a pure function of what a worker sees (desired streams, leases, live
 * workers), evaluated by every worker on every tick. Nothing coordinates the workers but the
 * compare-and-set on the lease's revision, so two workers that decide to claim the same stream at
 * once cannot both get it.
 *
 * The rules, with `floor` and `ceil` the even share (streams / live workers, rounded down and up):
 * - a lease not renewed for `leaseMs` (as seen locally) is free, as is a stream without one;
 * - a worker claims free streams while it runs fewer than `ceil` (and than its capacity); the
 *   least loaded live workers go first, and among them the one whose rendezvous hash of
 *   (stream, worker) is highest, so that two workers rarely reach for the same stream; the others
 *   wait `claimGraceMs` before claiming a stream all the same (that worker may be stuck);
 * - a worker above `ceil`, or above `floor` while another live worker is below `floor` and every
 *   stream is held, releases one stream (a joining worker takes its share this way), and does not
 *   take it back for a while (`cooldown`).
 */

export interface LeaseView {
  worker: string;
  revision: number;
  /** Local time this revision was first seen. */
  seenAt: number;
}

export interface PlanInput {
  self: string;
  now: number;
  leaseMs: number;
  claimGraceMs: number;
  /** Streams this worker may run at most. */
  capacity: number;
  /** Desired stream ids. */
  desired: string[];
  leases: Map<string, LeaseView>;
  /** Live workers other than self (their capacity). */
  peers: Map<string, { capacity: number }>;
  /** Streams this worker runs now. */
  mine: Set<string>;
  /** Local time each free stream was first seen free (kept by the caller across ticks). */
  freeSince: Map<string, number>;
  /** Streams this worker released recently, and until when it leaves them to others. */
  cooldown: Map<string, number>;
}

export interface Plan {
  /** Streams to claim, with the revision of the expired lease to replace (undefined: no lease). */
  claim: { stream: string; revision?: number }[];
  /** Streams to hand back to the others. */
  release: string[];
  /** Streams this worker runs that are no longer desired. */
  drop: string[];
  /** Streams this worker runs whose lease another worker now holds. */
  lost: string[];
}

/** FNV-1a, 32 bits: the rendezvous score of a (stream, worker) pair. */
export function score(stream: string, worker: string): number {
  let h = 0x811c9dc5;
  const s = `${stream}\u0000${worker}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The live holder of a stream's lease, or undefined when it is free. */
export function holder(lease: LeaseView | undefined, self: string, now: number, leaseMs: number): string | undefined {
  if (!lease) return undefined;
  if (lease.worker === self) return self;
  return now - lease.seenAt < leaseMs ? lease.worker : undefined;
}

/**
 * @example
 * const { claim, release, drop, lost } = plan({ self: 'w1', now: Date.now(), leaseMs: 4000, ... });
 */
export function plan(input: PlanInput): Plan {
  const { self, now, leaseMs, claimGraceMs, capacity, desired, leases, peers, mine, freeSince, cooldown } = input;
  const desiredSet = new Set(desired);
  const drop = [...mine].filter((s) => !desiredSet.has(s));
  const lost = [...mine].filter((s) => desiredSet.has(s) && leases.get(s) !== undefined && leases.get(s)!.worker !== self);
  const running = new Set([...mine].filter((s) => desiredSet.has(s) && !lost.includes(s)));

  const counts = new Map<string, number>([[self, running.size]]);
  for (const p of peers.keys()) counts.set(p, 0);
  const free: string[] = [];
  for (const s of desired) {
    if (running.has(s)) continue;
    const h = holder(leases.get(s), self, now, leaseMs);
    if (h === undefined || h === self) free.push(s);
    else counts.set(h, (counts.get(h) ?? 0) + 1); // a holder missing from the registry still counts as live
  }
  for (const s of [...freeSince.keys()]) if (!free.includes(s)) freeSince.delete(s);
  for (const s of free) if (!freeSince.has(s)) freeSince.set(s, now);
  for (const [s, until] of cooldown) if (until <= now) cooldown.delete(s);

  const workers = counts.size;
  const floor = Math.floor(desired.length / workers);
  const ceil = Math.ceil(desired.length / workers);
  const cap = Math.min(ceil, capacity);
  const capOf = (w: string) => (w === self ? capacity : (peers.get(w)?.capacity ?? capacity));

  const release: string[] = [];
  const byScore = [...running].sort((a, b) => score(a, self) - score(b, self));
  if (running.size > cap) {
    release.push(...byScore.slice(0, running.size - cap));
  } else if (free.length === 0 && running.size > floor && [...counts].some(([w, c]) => w !== self && c < floor && c < capOf(w))) {
    release.push(byScore[0]!);
  }

  const claim: Plan['claim'] = [];
  let mineCount = running.size - release.length;
  const order = free.filter((s) => !cooldown.has(s)).sort((a, b) => score(b, self) - score(a, self));
  for (const s of order) {
    if (mineCount >= cap) break;
    // Among the least loaded workers with room, the highest score claims first.
    let least = Infinity;
    for (const [w, c] of counts) if (c < capOf(w)) least = Math.min(least, w === self ? mineCount : c);
    const eligible = [...counts.keys()].filter((w) => (w === self ? mineCount : counts.get(w)!) === least && (w === self ? mineCount : counts.get(w)!) < capOf(w));
    const best = eligible.sort((a, b) => score(s, b) - score(s, a))[0];
    if (best !== self && now - (freeSince.get(s) ?? now) < claimGraceMs) {
      // Leave it to `best`, as far as counting goes, so the next stream goes to someone else.
      if (best !== undefined) counts.set(best, counts.get(best)! + 1);
      continue;
    }
    const lease = leases.get(s);
    claim.push({ stream: s, revision: lease && lease.worker !== self ? lease.revision : lease?.revision });
    mineCount++;
    counts.set(self, mineCount);
  }
  return { claim, release, drop, lost };
}
