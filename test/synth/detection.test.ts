import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLASSES } from '../../src/model/data/synth/classes.js';
import { measureDetectionRate } from '../../src/eval/synth-detection.js';

// The real detector (BlazeFace + FaceMesh on the wasm backend) on a handful of jittered faces per class.
test('the face detector finds synthetic faces of every class', async () => {
  const r = await measureDetectionRate({ perClass: 3, size: 160, seed: 21, identities: 8 });
  for (const c of CLASSES) {
    assert.equal(r.perClass[c].total, 3);
    assert.ok(r.perClass[c].found >= 2, `${c}: ${r.perClass[c].found}/3 found`);
  }
  assert.ok(r.overall.rate >= 0.95, `overall ${r.overall.found}/${r.overall.total}`);
});
