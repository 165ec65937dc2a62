import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { BatcherClosedError, createBatcher } from '../../src/pipeline/batch/index.js';

/** A predict whose batches the test settles by hand. */
function controlled<T, R>() {
  const calls: { items: T[]; resolve: (r: R[]) => void; reject: (e: unknown) => void }[] = [];
  const predict = (items: T[]) => new Promise<R[]>((resolve, reject) => calls.push({ items, resolve, reject }));
  return { calls, predict };
}

/** Lets pending promise callbacks and immediates run, without letting any real time pass. */
const settle = () => new Promise((r) => setImmediate(r));

const activeTimeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('flushes by size; items arriving during a batch form the next batches in FIFO order', async () => {
  const baseline = activeTimeouts();
  const { calls, predict } = controlled<number, number>();
  const b = createBatcher(predict, { maxBatch: 3, maxWaitMs: 60_000 });
  const results = Array.from({ length: 7 }, (_, i) => b.submit(i));
  await settle();
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0]!.items, [0, 1, 2]);
  assert.equal(b.stats().inFlight, 3);
  assert.equal(b.stats().queueDepth, 4);

  calls[0]!.resolve([0, 10, 20]);
  await settle();
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[1]!.items, [3, 4, 5]);
  calls[1]!.resolve([30, 40, 50]);
  await settle();
  assert.equal(calls.length, 2, 'one item left: it waits for maxWaitMs');
  assert.equal(b.stats().queueDepth, 1);

  await b.close();
  const settled = await Promise.allSettled(results);
  assert.deepEqual(settled.slice(0, 6).map((s) => (s as PromiseFulfilledResult<number>).value), [0, 10, 20, 30, 40, 50]);
  assert.equal(settled[6]!.status, 'rejected');
  assert.ok((settled[6] as PromiseRejectedResult).reason instanceof BatcherClosedError);
  assert.equal(activeTimeouts(), baseline, 'the 60 s wait timer was stopped by close()');
});

test('flushes a partial batch maxWaitMs after the first item', async () => {
  const sizes: number[] = [];
  const b = createBatcher(async (xs: string[]) => (sizes.push(xs.length), xs.map((x) => x.toUpperCase())), { maxBatch: 8, maxWaitMs: 40 });
  const t0 = performance.now();
  const p = Promise.all(['a', 'b', 'c'].map((x) => b.submit(x)));
  await settle();
  assert.deepEqual(sizes, [], 'nothing runs before the wait ends');
  assert.deepEqual(await p, ['A', 'B', 'C']);
  assert.ok(performance.now() - t0 >= 38, `flushed after ${performance.now() - t0} ms`);
  assert.deepEqual(sizes, [3]);
  await b.close();
});

test('the wait is measured from the first waiting item, not the latest', async () => {
  const batches: string[][] = [];
  const b = createBatcher(async (xs: string[]) => (batches.push(xs), xs), { maxBatch: 8, maxWaitMs: 100 });
  const all = [b.submit('a')];
  // b arrives inside a's wait; c after a's wait ended (but inside b's, were the wait per item).
  await new Promise<void>((done) => {
    setTimeout(() => all.push(b.submit('b')), 50);
    setTimeout(() => (all.push(b.submit('c')), done()), 130);
  });
  await Promise.all(all);
  assert.deepEqual(batches, [['a', 'b'], ['c']]);
  await b.close();
});

test('an item whose wait expired during a running batch goes as soon as that batch ends', async () => {
  const { calls, predict } = controlled<number, number>();
  const b = createBatcher(predict, { maxBatch: 2, maxWaitMs: 20 });
  const first = [b.submit(1), b.submit(2)];
  await settle();
  const late = b.submit(3);
  await sleep(50);
  assert.equal(calls.length, 1, 'no second batch while the first runs');
  calls[0]!.resolve([1, 2]);
  await settle();
  assert.equal(calls.length, 2, 'no fresh 20 ms wait');
  assert.deepEqual(calls[1]!.items, [3]);
  calls[1]!.resolve([3]);
  assert.deepEqual(await Promise.all([...first, late]), [1, 2, 3]);
  await b.close();
});

test('two interleaved streams each get their own results, in their own submit order', async () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const sizes: number[] = [];
  const b = createBatcher(
    async (items: { stream: string; seq: number }[]) => {
      sizes.push(items.length);
      await sleep(Math.floor(rand() * 4));
      return items.map((it) => `${it.stream}:${it.seq}`);
    },
    { maxBatch: 4, maxWaitMs: 2 },
  );
  const order: Record<string, number[]> = { A: [], B: [] };
  const pending: Promise<void>[] = [];
  const next = { A: 0, B: 0 };
  for (let round = 0; round < 30; round++) {
    const stream = rand() < 0.5 ? 'A' : 'B';
    const burst = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < burst; k++) {
      const seq = next[stream]++;
      pending.push(
        b.submit({ stream, seq }).then((r) => {
          assert.equal(r, `${stream}:${seq}`);
          order[stream]!.push(seq);
        }),
      );
    }
    if (rand() < 0.5) await sleep(Math.floor(rand() * 3));
  }
  await Promise.all(pending);
  assert.deepEqual(order.A, [...Array(next.A).keys()]);
  assert.deepEqual(order.B, [...Array(next.B).keys()]);
  assert.ok(next.A > 5 && next.B > 5, 'both streams took part');
  assert.ok(sizes.some((n) => n > 1), `some batches mixed items: ${sizes}`);
  assert.ok(sizes.every((n) => n <= 4));
  await b.close();
});

test('a failing predict rejects only its own batch and the batcher keeps working', async () => {
  const b = createBatcher(
    (xs: string[]): Promise<string[]> => {
      if (xs.includes('sync')) throw new Error('sync failure');
      if (xs.includes('bad')) return Promise.reject(new Error('boom'));
      if (xs.includes('short')) return Promise.resolve(['only one']);
      return Promise.resolve(xs.map((x) => x + '!'));
    },
    { maxBatch: 2, maxWaitMs: 5 },
  );
  const r = await Promise.allSettled(['x', 'bad', 'y', 'z', 'sync', 'w', 'short', 'v', 'u'].map((x) => b.submit(x)));
  const view = r.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message));
  assert.deepEqual(view, [
    'boom',
    'boom',
    'y!',
    'z!',
    'sync failure',
    'sync failure',
    'predict returned 1 results for a batch of 2',
    'predict returned 1 results for a batch of 2',
    'u!',
  ]);
  assert.equal(await b.submit('later'), 'later!');
  const s = b.stats();
  assert.equal(s.batches, 6);
  assert.equal(s.failedBatches, 3);
  await b.close();
});

test('close rejects waiting items, lets the running batch finish, refuses new items, leaves no timer', async () => {
  const baseline = activeTimeouts();
  const { calls, predict } = controlled<number, number>();
  const b = createBatcher(predict, { maxBatch: 2, maxWaitMs: 30_000 });
  const running = [b.submit(1), b.submit(2)];
  const waiting = [b.submit(3)];
  await settle();
  assert.equal(activeTimeouts(), baseline, 'no wait timer while a batch runs');
  const closing = b.close();
  let closed = false;
  void closing.then(() => (closed = true));
  await assert.rejects(waiting[0]!, (e: Error) => e instanceof BatcherClosedError && /batcher closed/.test(e.message));
  await assert.rejects(b.submit(4), BatcherClosedError);
  await settle();
  assert.equal(closed, false, 'close() waits for the batch in flight');
  calls[0]!.resolve([10, 20]);
  assert.deepEqual(await Promise.all(running), [10, 20]);
  await closing;
  assert.equal(calls.length, 1);
  assert.equal(b.stats().closed, true);
  assert.equal(b.stats().queueDepth, 0);

  // A batcher closed while an item waits on its timer leaves no timer behind.
  const idle = createBatcher(async (xs: number[]) => xs, { maxBatch: 8, maxWaitMs: 30_000 });
  const pending = idle.submit(1);
  assert.equal(activeTimeouts(), baseline + 1);
  await idle.close();
  await assert.rejects(pending, BatcherClosedError);
  assert.equal(activeTimeouts(), baseline);
});

test('stats: counts, mean batch size, size histogram and inference time', async () => {
  const b = createBatcher(
    async (xs: number[]) => {
      await sleep(xs.length === 4 ? 10 : 40);
      return xs;
    },
    { maxBatch: 4, maxWaitMs: 5 },
  );
  assert.deepEqual(b.stats(), { batches: 0, failedBatches: 0, items: 0, meanBatchSize: 0, histogram: [0, 0, 0, 0, 0], inferenceMs: { last: 0, mean: 0 }, queueDepth: 0, inFlight: 0, closed: false });
  await Promise.all([1, 2, 3, 4].map((x) => b.submit(x)));
  await b.submit(5);
  await Promise.all([6, 7].map((x) => b.submit(x)));
  const s = b.stats();
  assert.equal(s.batches, 3);
  assert.equal(s.items, 7);
  assert.equal(s.meanBatchSize, 7 / 3);
  assert.deepEqual(s.histogram, [0, 1, 1, 0, 1]);
  assert.ok(s.inferenceMs.last >= 39, `last ${s.inferenceMs.last}`);
  // Mean of three calls of at least 10, 40 and 40 ms.
  assert.ok(s.inferenceMs.mean >= 29, `mean ${s.inferenceMs.mean}`);
  assert.equal(s.queueDepth, 0);
  await b.close();
});

test('invalid options give clear errors', () => {
  const p = async (xs: number[]) => xs;
  for (const maxBatch of [0, 1.5, -2]) assert.throws(() => createBatcher(p, { maxBatch }), /maxBatch must be an integer >= 1/);
  for (const maxWaitMs of [-1, Number.NaN, Infinity]) assert.throws(() => createBatcher(p, { maxWaitMs }), /maxWaitMs must be a finite number >= 0/);
  assert.deepEqual(createBatcher(p, { maxBatch: undefined }).options, { maxBatch: 16, maxWaitMs: 10 });
});
