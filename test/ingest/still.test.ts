import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openSource, parseSource } from '../../src/ingest/index.js';
import { videosIn } from '../../src/eval/label.js';
import { MEDIA } from './helpers.js';

test('a still image (JPEG, PNG) is read as a one-frame video, with the image demuxer named, not image2', async () => {
  for (const name of ['grace_hopper.jpg', 'astronaut.png']) {
    const src = openSource(parseSource(name, { mediaDirs: [MEDIA] }), { maxSide: 64 });
    const frames = [];
    for await (const f of src.frames()) frames.push(f);
    assert.equal(frames.length, 1, name);
    assert.equal(frames[0]!.index, 0);
    assert.ok(frames[0]!.data.some((v) => v > 0), `${name}: real pixels`);
  }
});

test('labelling a folder takes its videos and still images', async () => {
  const { folder, videos } = await videosIn(MEDIA);
  assert.equal(folder, true);
  assert.deepEqual(videos.map((v) => v.slice(MEDIA.length + 1)), ['astronaut.png', 'face_pan.mp4', 'grace_hopper.jpg']);
});
