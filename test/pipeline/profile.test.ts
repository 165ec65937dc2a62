/** The opt-in stage timing hook: results are untouched, with or without a listener. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { timed, type PipelineStage } from '../../src/pipeline/profile.js';

test('without a listener, timed returns what the step returns (the same promise for an async step)', () => {
  const p = Promise.resolve(3);
  assert.equal(timed(undefined, 'mesh', () => p), p);
  assert.equal(timed(undefined, 'alignment', () => 7), 7);
});

test('with a listener, each run reports its stage, wall and CPU time, sync or async, failed or not', async () => {
  const seen: [PipelineStage, number, number][] = [];
  const listen = (stage: PipelineStage, ms: number, cpuMs: number) => void seen.push([stage, ms, cpuMs]);
  assert.deepEqual(timed(listen, 'alignment', () => [1, 2]), [1, 2]);
  assert.equal(await timed(listen, 'mesh', () => new Promise((r) => setTimeout(() => r('m'), 20))), 'm');
  await assert.rejects(timed(listen, 'blazeface', () => Promise.reject(new Error('boom'))), /boom/);
  assert.throws(() => timed(listen, 'smoothing', () => { throw new Error('sync boom'); }), /sync boom/);
  assert.deepEqual(seen.map((s) => s[0]), ['alignment', 'mesh', 'blazeface']);
  assert.ok(seen[1]![1] >= 15, `the async step's wall time counts until it settles (${seen[1]![1]} ms)`);
  assert.ok(seen.every(([, ms, cpu]) => ms >= 0 && cpu >= 0));
});
