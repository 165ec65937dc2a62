import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import {
  applyLabelNoise,
  CLASSES,
  DEFAULT_SPLITS,
  dominantLabel,
  expression,
  expressionFeatures,
  FEATURE_NAMES,
  FLIP_TO,
  generateDataset,
  NO_JITTER,
  openMp4,
  renderFace,
  renderScene,
  sampleFaceParams,
  sampleIdentity,
  scriptTrack,
  splitIdentities,
  trackFrame,
  type DatasetSummary,
} from '../../src/model/data/synth/index.js';
import { ffmpegPath } from '../../src/model/data/synth/video.js';

const run = promisify(execFile);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('classes and expressions', () => {
  test('class list is Aff-Wild2 order', () => {
    assert.deepEqual([...CLASSES], ['Neutral', 'Anger', 'Disgust', 'Fear', 'Happiness', 'Sadness', 'Surprise', 'Other']);
  });

  test('intensity blends linearly from the neutral face', () => {
    for (const c of CLASSES.slice(1)) {
      const zero = expressionFeatures(expression(c, 0));
      const half = expressionFeatures(expression(c, 0.5));
      const full = expressionFeatures(expression(c, 1));
      let moved = 0;
      for (const k of FEATURE_NAMES) {
        assert.equal(zero[k], 0, `${c} at intensity 0 moves ${k}`);
        assert.ok(Math.abs(half[k] - full[k] / 2) < 1e-12, `${c}.${k} is not linear in intensity`);
        moved += Math.abs(full[k]);
      }
      assert.ok(moved > 1, `${c} barely changes the face`);
    }
  });

  test('every pair of classes differs in its feature displacement', () => {
    const vecs = CLASSES.map((c) => FEATURE_NAMES.map((k) => expressionFeatures(expression(c, 1))[k]));
    for (let i = 0; i < vecs.length; i++) {
      for (let j = i + 1; j < vecs.length; j++) {
        const d = Math.hypot(...vecs[i].map((v, k) => v - vecs[j][k]));
        assert.ok(d > 1, `${CLASSES[i]} and ${CLASSES[j]} are too close (${d.toFixed(2)})`);
      }
    }
  });

  test('dominant label: strongest class, Neutral below the threshold', () => {
    assert.equal(dominantLabel(expression('Fear', 0.2), 0.35), 0);
    assert.equal(dominantLabel(expression('Fear', 0.5), 0.35), 3);
    const mix = expression('Happiness', 0.6);
    mix.weights[6] = 0.7;
    assert.equal(dominantLabel(mix), 6);
  });
});

describe('rendering', () => {
  const id = sampleIdentity(5, 2);

  test('same params give byte-identical PNGs; seed, class and identity change them', async () => {
    const p = sampleFaceParams(5, id, 'Surprise', 0);
    const a = await renderFace(p, 112);
    const b = await renderFace(sampleFaceParams(5, sampleIdentity(5, 2), 'Surprise', 0), 112);
    assert.equal(sha(a), sha(b));
    const others = [sampleFaceParams(6, id, 'Surprise', 0), sampleFaceParams(5, id, 'Anger', 0), sampleFaceParams(5, sampleIdentity(5, 3), 'Surprise', 0)];
    for (const o of others) assert.notEqual(sha(await renderFace(o, 112)), sha(a));
  });

  test('sizes and formats', async () => {
    const p = sampleFaceParams(5, id, 'Happiness', 1);
    for (const size of [64, 112, 256]) {
      const png = await renderFace(p, size);
      const meta = await sharp(png).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', size, size, 3]);
      assert.equal((await renderFace(p, size, { format: 'rgb' })).length, size * size * 3);
    }
    const jpg = await sharp(await renderFace(p, 112, { format: 'jpeg' })).metadata();
    assert.equal(jpg.format, 'jpeg');
    const pair = await renderScene([p, sampleFaceParams(5, sampleIdentity(5, 9), 'Fear', 1)], 96, { format: 'rgb' });
    assert.equal(pair.length, 2 * 96 * 96 * 3);
    await assert.rejects(renderFace(p, 8), /cell size/);
  });

  test('intensity 0 of any class draws exactly the neutral face', async () => {
    const neutral = { ...sampleFaceParams(5, id, 'Neutral', 0, NO_JITTER) };
    const ref = sha(await renderFace(neutral, 96, { format: 'rgb' }));
    for (const c of CLASSES.slice(1)) {
      assert.equal(sha(await renderFace({ ...neutral, expression: expression(c, 0) }, 96, { format: 'rgb' })), ref, c);
      assert.notEqual(sha(await renderFace({ ...neutral, expression: expression(c, 1) }, 96, { format: 'rgb' })), ref, c);
    }
  });
});

describe('label noise', () => {
  const clean = Array.from({ length: 800 }, (_, i) => i % 8);

  test('symmetric: exactly p% change, never to the same class, spread over the others', () => {
    const noisy = applyLabelNoise(clean, { kind: 'symmetric', percent: 25 }, 3);
    const changed = noisy.filter((l, i) => l !== clean[i]).length;
    assert.equal(changed, 200);
    const targets = new Array<number>(8).fill(0);
    noisy.forEach((l, i) => l !== clean[i] && targets[l]++);
    for (const t of targets) assert.ok(t > 10 && t < 45, `uneven symmetric noise: ${targets}`);
    assert.deepEqual(applyLabelNoise(clean, { kind: 'symmetric', percent: 25 }, 3), noisy);
    assert.notDeepEqual(applyLabelNoise(clean, { kind: 'symmetric', percent: 25 }, 4), noisy);
  });

  test('class flip: p% of each class goes to its fixed partner', () => {
    const noisy = applyLabelNoise(clean, { kind: 'flip', percent: 30 }, 3);
    CLASSES.forEach((c, ci) => {
      const moved = noisy.filter((l, i) => clean[i] === ci && l !== ci);
      assert.equal(moved.length, 30, c);
      assert.ok(moved.every((l) => l === CLASSES.indexOf(FLIP_TO[c])), c);
    });
    assert.deepEqual(applyLabelNoise(clean, { kind: 'none', percent: 30 }, 3), clean);
    assert.throws(() => applyLabelNoise(clean, { kind: 'flip', percent: 120 }, 3), /0\.\.100/);
  });
});

describe('splits', () => {
  test('identity splits are disjoint, cover everyone and follow the fractions', () => {
    for (const n of [3, 10, 41]) {
      const s = splitIdentities(n, DEFAULT_SPLITS, 9);
      const all = [...s.train, ...s.val, ...s.test];
      assert.equal(new Set(all).size, n);
      assert.equal(all.length, n);
      assert.ok(s.val.length >= 1 && s.test.length >= 1);
      if (n === 41) assert.ok(Math.abs(s.train.length - 0.7 * n) <= 1.5);
    }
    assert.deepEqual(splitIdentities(20, DEFAULT_SPLITS, 9), splitIdentities(20, DEFAULT_SPLITS, 9));
    assert.notDeepEqual(splitIdentities(20, DEFAULT_SPLITS, 9), splitIdentities(20, DEFAULT_SPLITS, 10));
  });
});

describe('video scripts', () => {
  test('smooth ramps, labels follow the weights, all classes appear', () => {
    const t = scriptTrack(sampleIdentity(2, 0), 'v', { frames: 600 });
    assert.equal(t.labels.length, 600);
    for (let f = 1; f < 600; f++) {
      for (let c = 0; c < 8; c++) assert.ok(Math.abs(t.states[f].weights[c] - t.states[f - 1].weights[c]) < 0.35, `jump at frame ${f}`);
      assert.ok(Math.abs(t.poses[f].roll - t.poses[f - 1].roll) < 1, 'head motion jumps');
    }
    t.states.forEach((s, f) => assert.equal(t.labels[f], dominantLabel(s, 0.35)));
    assert.equal(new Set(t.labels).size, 8);
  });

  test('MP4 encoding is byte-reproducible and checks its input', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'synth-mp4-'));
    try {
      const t = scriptTrack(sampleIdentity(2, 1), 'mp4', { frames: 6 });
      const hashes: string[] = [];
      for (const name of ['a.mp4', 'b.mp4']) {
        const w = openMp4(path.join(dir, name), 64, 64);
        for (let f = 0; f < 6; f++) await w.write(await renderScene([trackFrame(t, f)], 64, { format: 'rgb' }));
        await w.close();
        hashes.push(sha(await readFile(path.join(dir, name))));
      }
      assert.equal(hashes[0], hashes[1]);
      assert.throws(() => openMp4(path.join(dir, 'odd.mp4'), 63, 64), /even/);
      const w = openMp4(path.join(dir, 'c.mp4'), 64, 64);
      await assert.rejects(w.write(Buffer.alloc(10)), /expected 12288/);
      await w.write(Buffer.alloc(64 * 64 * 3));
      await w.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('generateDataset', () => {
  let dir: string;
  let out: string;
  let summary: DatasetSummary;
  const opts = { identities: 6, imagesPerClass: 6, videos: 2, framesPerVideo: 30, size: 64, videoSize: 96, seed: 4, pairFraction: 1, noise: { kind: 'symmetric' as const, percent: 40 }, splits: { train: 0.5, val: 0.25, test: 0.25 } };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'synth-'));
    out = path.join(dir, 'a');
    summary = await generateDataset({ out, ...opts });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('image-folder layout, identity-disjoint splits, noise only on train', async () => {
    const rows = (await readFile(path.join(out, 'labels.csv'), 'utf8')).trim().split('\n').slice(1).map((r) => r.split(','));
    assert.equal(rows.length, summary.images.train + summary.images.val + summary.images.test);
    // 6 identities at 0.5/0.25/0.25 -> 4/1/1 (the rounding remainder goes to train); 6 per class scaled by that share.
    assert.deepEqual(summary.images, { train: 32, val: 8, test: 8 });
    const who: Record<string, Set<string>> = { train: new Set(), val: new Set(), test: new Set() };
    let changed = 0;
    for (const [rel, split, identity, clean, noisy] of rows) {
      assert.ok(rel.startsWith(`${split}/${noisy}/${identity}_`), rel);
      assert.ok(CLASSES.includes(clean as never) && CLASSES.includes(noisy as never));
      const meta = await sharp(path.join(out, rel)).metadata();
      assert.deepEqual([meta.width, meta.height], [64, 64]);
      who[split].add(identity);
      if (clean !== noisy) {
        assert.equal(split, 'train', 'noise leaked outside train');
        changed++;
      }
    }
    assert.equal(changed, Math.round(32 * 0.4));
    assert.equal(summary.noise.imagesChanged, changed);
    for (const [a, b] of [['train', 'val'], ['train', 'test'], ['val', 'test']]) {
      assert.equal([...who[a]].filter((x) => who[b].has(x)).length, 0, `${a}/${b} share identities`);
    }
    const files = (await Promise.all(CLASSES.map((c) => readdir(path.join(out, 'val', c))))).flat();
    assert.equal(files.length, 8);
  });

  test('Aff-Wild2 layout: annotations, crops and an MP4 with one frame per label', async () => {
    const root = path.join(out, 'affwild2');
    assert.equal(summary.videos.length, 2);
    for (const v of summary.videos) {
      assert.deepEqual(v.tracks.map((t) => t.name), [`${v.name}_left`, `${v.name}_right`]);
      for (const t of v.tracks) {
        for (const dirName of ['annotations', 'annotations_clean']) {
          const lines = (await readFile(path.join(root, dirName, `${t.name}.txt`), 'utf8')).trimEnd().split('\n');
          assert.equal(lines[0], 'Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other');
          assert.equal(lines.length - 1, 30);
          for (const l of lines.slice(1)) assert.match(l, /^[0-7]$/);
        }
        const crops = (await readdir(path.join(root, 'cropped_aligned', t.name))).sort();
        assert.equal(crops.length, 30);
        assert.equal(crops[0], '00001.jpg');
        assert.equal(crops[29], '00030.jpg');
        const meta = await sharp(path.join(root, 'cropped_aligned', t.name, crops[0])).metadata();
        assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 64, 64]);
      }
      const file = path.join(root, 'videos', `${v.name}.mp4`);
      const probe = await run(ffmpegPath(), ['-hide_banner', '-i', file], { encoding: 'utf8' }).catch((e: { stderr: string }) => e);
      assert.match(probe.stderr, /h264/);
      assert.match(probe.stderr, /yuv420p/);
      assert.match(probe.stderr, /192x96/);
      assert.match(probe.stderr, /25 fps/);
      const raw = await run(ffmpegPath(), ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { encoding: 'buffer', maxBuffer: 1 << 26 });
      assert.equal(raw.stdout.length, 30 * 192 * 96 * 3);
    }
    const trainVideos = summary.videos.filter((v) => v.split === 'train');
    let changed = 0;
    for (const v of summary.videos) {
      for (const t of v.tracks) {
        const noisy = (await readFile(path.join(root, 'annotations', `${t.name}.txt`), 'utf8')).trim().split('\n').slice(1);
        const clean = (await readFile(path.join(root, 'annotations_clean', `${t.name}.txt`), 'utf8')).trim().split('\n').slice(1);
        const diff = noisy.filter((l, i) => l !== clean[i]).length;
        if (v.split === 'train') assert.equal(diff, 12, `${t.name}: 40 % of 30 frames`);
        else assert.equal(diff, 0);
        changed += diff;
      }
    }
    assert.equal(changed, summary.noise.framesChanged);
    assert.equal(changed, trainVideos.length * 2 * 12);
  });

  test('same seed and settings reproduce the same bytes', async () => {
    const again = path.join(dir, 'b');
    await generateDataset({ out: again, ...opts, videos: 0 });
    const rows = (await readFile(path.join(out, 'labels.csv'), 'utf8')).trim().split('\n').slice(1);
    assert.equal(await readFile(path.join(again, 'labels.csv'), 'utf8'), await readFile(path.join(out, 'labels.csv'), 'utf8'));
    for (const r of rows.filter((_, i) => i % 5 === 0)) {
      const rel = r.split(',')[0];
      assert.equal(sha(await readFile(path.join(again, rel))), sha(await readFile(path.join(out, rel))), rel);
    }
  });
});
