import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractorConfig, PRESETS, tokenCount, validateExtractorConfig, type PosterConfig } from '../../src/model/extractor/index.js';

test('presets validate and have the documented token counts', () => {
  assert.equal(tokenCount(extractorConfig('full')), 147);
  assert.equal(extractorConfig('full').embedDim, 768);
  assert.ok(extractorConfig('lite').inputSize <= 112);
  for (const name of Object.keys(PRESETS) as (keyof typeof PRESETS)[]) {
    assert.deepEqual(validateExtractorConfig(PRESETS[name]), PRESETS[name]);
    // A randomly initialised stream is noise when frozen: no preset freezes anything.
    const frozen = PRESETS[name].frozen as Partial<PosterConfig['frozen']>;
    assert.equal(frozen.landmark ?? false, false, `${name}: landmark stream trainable by default`);
    assert.equal(frozen.image, false, `${name}: image stream trainable by default`);
  }
});

test('overrides merge into nested objects', () => {
  const c = extractorConfig('tiny', { frozen: { image: true }, vit: { depth: 2 } });
  assert.deepEqual(c.frozen, { landmark: false, image: true });
  assert.equal(c.vit.depth, 2);
  assert.equal(c.vit.heads, PRESETS.tiny.vit.heads);
});

test('inconsistent configs are rejected with the field named', () => {
  assert.throws(() => extractorConfig('tiny', { backboneSize: 40 }), /backboneSize must be a multiple of 16/);
  assert.throws(() => extractorConfig('tiny', { inputSize: 16 }), /inputSize must be at least backboneSize/);
  assert.throws(() => extractorConfig('tiny', { fusion: { windows: [3, 2, 2] } }), /fusion\.windows\[0\] \(3\) must divide/);
  assert.throws(() => extractorConfig('tiny', { fusion: { heads: [3, 2, 4] } }), /fusion\.heads\[0\]/);
  assert.throws(() => extractorConfig('tiny', { landmark: { widths: [4, 16, 16] } }), /landmark\.widths/);
  assert.throws(() => extractorConfig('tiny', { vit: { heads: 5 } }), /vit\.heads/);
  assert.throws(() => extractorConfig('tiny', { fusion: { dropPath: [0, 1, 0] } }), /fusion\.dropPath\[1\] must be a number in \[0, 1\)/);
  assert.throws(() => extractorConfig('tiny', { image: { depths: [1, 0, 1] } }), /image\.depths\[1\] must be a positive integer/);
  assert.throws(() => validateExtractorConfig({ ...PRESETS.tiny, frozen: { landmark: 'yes', image: false } }), /frozen\.landmark must be a boolean/);
  assert.throws(() => extractorConfig('huge' as 'tiny'), /unknown extractor preset "huge"/);
});
