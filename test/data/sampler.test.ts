import assert from 'node:assert/strict';
import { test } from 'node:test';
import { refineSampler, type DataRecord } from '../../src/model/data/index.js';

/** In-memory data set: groups g0..g5 of different sizes; class 3 is rare, class 4 absent. */
function fakeDataset(): { classes: string[]; records: () => AsyncGenerator<DataRecord> } {
  const all: DataRecord[] = [];
  const sizes = [200, 120, 40, 30, 10, 3];
  sizes.forEach((n, g) => {
    for (let i = 0; i < n; i++) all.push({ path: `g${g}/${i}.jpg`, label: i % 3, group: `g${g}`, frame: i + 1 });
  });
  all.push({ path: 'g5/rare0.jpg', label: 3, group: 'g5' }, { path: 'g2/rare1.jpg', label: 3, group: 'g2' });
  return {
    classes: ['a', 'b', 'c', 'd', 'e'],
    records: async function* () {
      yield* all;
    },
  };
}

const groupOf = (r: DataRecord) => r.group;

test('exactly perClass records of every present class; absent classes reported', async () => {
  const { records, pooled, emptyClasses } = await refineSampler(fakeDataset(), { perGroup: 25, perClass: 20, seed: 3 }).epoch(0);
  const perClass = [0, 0, 0, 0, 0];
  for (const r of records) perClass[r.label]++;
  assert.deepEqual(perClass, [20, 20, 20, 20, 0]);
  assert.deepEqual(emptyClasses, [4]);
  assert.equal(pooled[3], 2);
  // The rare class (2 pooled) is filled with replacement, and each of its images appears.
  assert.deepEqual(new Set(records.filter((r) => r.label === 3).map((r) => r.path)), new Set(['g5/rare0.jpg', 'g2/rare1.jpg']));
});

test('no group contributes more than perGroup distinct records', async () => {
  const { records, pooled } = await refineSampler(fakeDataset(), { perGroup: 25, perClass: 100, seed: 1 }).epoch(2);
  const distinct = new Map<string, Set<string>>();
  for (const r of records) {
    if (!distinct.has(groupOf(r))) distinct.set(groupOf(r), new Set());
    distinct.get(groupOf(r))!.add(r.path);
  }
  for (const [g, paths] of distinct) assert.ok(paths.size <= 25, `${g} has ${paths.size}`);
  // Groups of 200, 120, 41, 30 records are capped at 25 each; the groups of 10 and 4 kept whole.
  assert.equal(pooled.reduce((a, b) => a + b, 0), 25 * 4 + 10 + 4);
  // Draws within a capped group are spread over the whole group, not its first records.
  const frames = records.filter((r) => r.group === 'g0').map((r) => r.frame!);
  assert.ok(Math.max(...frames) > 100, 'reservoir sampling reaches late frames');
});

test('same seed and epoch repeat exactly; other epochs and seeds differ', async () => {
  const ds = fakeDataset();
  const paths = async (seed: number, epoch: number) =>
    (await refineSampler(ds, { perGroup: 30, perClass: 40, seed }).epoch(epoch)).records.map((r) => r.path).join();
  const a = await paths(5, 1);
  assert.equal(await paths(5, 1), a);
  assert.notEqual(await paths(5, 2), a);
  assert.notEqual(await paths(6, 1), a);
  // Epoch seed is seed + epoch.
  assert.equal(await paths(6, 0), a);
});

test('balance: false keeps every pooled record exactly once, at the data set\'s class frequencies', async () => {
  const { records, pooled } = await refineSampler(fakeDataset(), { perGroup: 25, perClass: 20, seed: 3, balance: false }).epoch(1);
  // Group caps: g0..g3 (200, 120, 41, 30 records) give 25 each; g4 all 10; g5 all 4 (incl. a rare one).
  assert.equal(records.length, 25 * 4 + 10 + 4);
  assert.equal(new Set(records.map((r) => r.path)).size, records.length);
  const perClass = [0, 0, 0, 0, 0];
  for (const r of records) perClass[r.label]++;
  assert.deepEqual(perClass, pooled);
  assert.ok(records.some((r) => r.path === 'g5/rare0.jpg'));
  // Shuffled: not the reader's order.
  assert.notDeepEqual(records.slice(0, 10).map((r) => r.group), Array(10).fill('g0'));
});
