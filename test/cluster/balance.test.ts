/** The balancing rules of the cluster's workers (src/cluster/balance.ts), as a pure function. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { plan, type LeaseView, type PlanInput } from '../../src/cluster/balance.js';

const NOW = 1_000_000;
const LEASE = 4000;

function input(over: Partial<Omit<PlanInput, 'leases'>> & { leases?: Record<string, Partial<LeaseView> & { worker: string }> } = {}): PlanInput {
  const leases = new Map(Object.entries(over.leases ?? {}).map(([s, l]) => [s, { revision: 1, seenAt: NOW - 100, ...l }]));
  return {
    self: 'a',
    now: NOW,
    leaseMs: LEASE,
    claimGraceMs: 2000,
    capacity: 16,
    desired: ['s1', 's2', 's3', 's4'],
    peers: new Map([['b', { capacity: 16 }]]),
    mine: new Set(),
    freeSince: new Map(),
    cooldown: new Map(),
    ...over,
    leases,
  };
}

describe('cluster balance', () => {
  it('two fresh workers: each claims at once only the free streams it ranks first, and up to half after the grace', () => {
    const first = plan(input());
    assert.ok(first.claim.length <= 2);
    const other = plan(input({ self: 'b', peers: new Map([['a', { capacity: 16 }]]) }));
    const both = [...first.claim, ...other.claim].map((c) => c.stream);
    assert.equal(new Set(both).size, both.length, 'no stream claimed by both at once');
    // After the grace, whatever is still free is claimed up to the even share.
    const later = plan(input({ freeSince: new Map(['s1', 's2', 's3', 's4'].map((s) => [s, NOW - 5000])) }));
    assert.equal(later.claim.length, 2);
    assert.ok(later.claim.every((c) => c.revision === undefined), 'no lease to replace');
  });

  it('a worker running everything hands streams over to a joining worker, down to its share', () => {
    const leases = Object.fromEntries(['s1', 's2', 's3', 's4'].map((s) => [s, { worker: 'a' }]));
    const p = plan(input({ mine: new Set(['s1', 's2', 's3', 's4']), leases }));
    assert.equal(p.release.length, 2);
    assert.deepEqual(p.claim, []);
  });

  it('with three workers and four streams, 2-2-0 becomes 2-1-1 (one release while every stream is held)', () => {
    const leases = { s1: { worker: 'a' }, s2: { worker: 'a' }, s3: { worker: 'b' }, s4: { worker: 'b' } };
    const peers = new Map([
      ['b', { capacity: 16 }],
      ['c', { capacity: 16 }],
    ]);
    const p = plan(input({ mine: new Set(['s1', 's2']), leases, peers }));
    assert.equal(p.release.length, 1);
    // The worker with none claims a free stream at once: it is the least loaded.
    const c = plan(input({ self: 'c', peers: new Map([['a', { capacity: 16 }], ['b', { capacity: 16 }]]), leases: { s1: { worker: 'a' }, s3: { worker: 'b' }, s4: { worker: 'b' } } }));
    assert.deepEqual(c.claim.map((x) => x.stream), ['s2']);
  });

  it('a lease not renewed for the lease time is free; its revision is the one to replace', () => {
    const leases = { s1: { worker: 'dead', revision: 7, seenAt: NOW - LEASE - 1 }, s2: { worker: 'a' }, s3: { worker: 'b' }, s4: { worker: 'b' } };
    const p = plan(input({ mine: new Set(['s2']), leases, freeSince: new Map([['s1', NOW - 5000]]) }));
    assert.deepEqual(p.claim, [{ stream: 's1', revision: 7 }]);
  });

  it('drops streams no longer desired, stops those another worker holds, and respects its capacity', () => {
    const p = plan(input({ desired: ['s1', 's2'], mine: new Set(['s1', 'gone']), leases: { s1: { worker: 'b', revision: 9 } } }));
    assert.deepEqual(p.drop, ['gone']);
    assert.deepEqual(p.lost, ['s1']);
    const capped = plan(input({ capacity: 1, freeSince: new Map(['s1', 's2', 's3', 's4'].map((s) => [s, NOW - 5000])) }));
    assert.equal(capped.claim.length, 1);
    const cooled = plan(input({ cooldown: new Map(['s1', 's2', 's3', 's4'].map((s) => [s, NOW + 1000])), freeSince: new Map(['s1', 's2', 's3', 's4'].map((s) => [s, NOW - 5000])) }));
    assert.deepEqual(cooled.claim, [], 'streams it just handed over are left to others');
  });
});
