/**
 * `arbex eval` end to end on a small Aff-Wild2-style fixture from the synthetic generator: crops
 * and videos (real engine, real detector, a tiny random-weight model), predictions files that
 * recompute to the reports, submissions, and hard errors. Track and frame correspondence of
 * --videos is checked exactly with a scripted engine.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { collectVideos, readAnnotationDir, readPredictions, scorePredictions, type EvalReport } from '../../src/eval/index.js';
import { readSettings } from '../../src/env.js';
import { openSource } from '../../src/ingest/index.js';
import { loadFaceModel } from '../../src/model/face-model.js';
import { ABAW_CLASSES } from '../../src/model/data/classes.js';
import { alignFace } from '../../src/pipeline/align/index.js';
import { createEngine } from '../../src/pipeline/engine.js';
import type { Engine, FrameOutput, LabelOptions } from '../../src/pipeline/types.js';
import { abawFixture, evalCli, tinyModel } from './fixture.js';

const CLASSES = [...ABAW_CLASSES];
let dir: string;
let fx: Awaited<ReturnType<typeof abawFixture>>;
let weights: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'arbex-eval-'));
  fx = await abawFixture(path.join(dir, 'synth'));
  weights = await tinyModel(path.join(dir, 'model'));
});
after(() => rm(dir, { recursive: true, force: true }));

/**
 * ABAW's figures counted here, from the predictions file and the annotation files, without the
 * project's metrics: accuracy, and the mean over all 8 classes of F1 = 2·tp / (support + predicted).
 */
function abawFigures(pairs: [truth: number, predicted: number][]) {
  const tp = new Array(8).fill(0);
  const support = new Array(8).fill(0);
  const predictedAs = new Array(8).fill(0);
  for (const [t, p] of pairs) {
    support[t]++;
    predictedAs[p]++;
    if (t === p) tp[t]++;
  }
  const f1 = tp.map((n, c) => (support[c] + predictedAs[c] > 0 ? (2 * n) / (support[c] + predictedAs[c]) : 0));
  return { accuracy: tp.reduce((a, b) => a + b, 0) / pairs.length, macroF1: f1.reduce((a, b) => a + b, 0) / 8 };
}

async function recompute(report: EvalReport, predictionsFile: string) {
  const rows = await readPredictions(predictionsFile, CLASSES);
  const annotations = await readAnnotationDir(fx.annotations);
  const pairs = (of: (video: string) => boolean) =>
    rows.filter((r) => of(r.video)).map((r): [number, number] => [annotations.find((a) => a.name === r.video)!.labels[r.frame - 1]!, r.label]);
  const overall = abawFigures(pairs(() => true));
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} != ${b}`);
  close(report.macroF1, overall.macroF1, 'macro F1');
  close(report.accuracy, overall.accuracy, 'accuracy');
  for (const v of report.videos) close(v.macroF1, abawFigures(pairs((name) => name === v.video)).macroF1, `macro F1 of ${v.video}`);
  // The report and the predictions file say the same thing.
  const scores = scorePredictions(rows, annotations, CLASSES);
  assert.deepEqual(scores.overall.confusion, report.confusion);
  return rows;
}

describe('arbex eval on an Aff-Wild2-style fixture', () => {
  const reports: Record<string, EvalReport> = {};
  const predictions: Record<string, string> = {};

  for (const mode of ['crops', 'videos'] as const) {
    test(`--${mode}: report, HTML, predictions that recompute to the report`, async () => {
      const out = path.join(dir, mode);
      predictions[mode] = path.join(out, 'pred.csv');
      const tensors = tf.memory().numTensors;
      const { code, out: text } = await evalCli([
        '--annotations', fx.annotations,
        `--${mode}`, mode === 'crops' ? fx.crops : fx.videos,
        '--weights', weights,
        '--smoothing', 'centred', '--window', '2',
        '--sweep-smoothing', '0,2,5',
        '--out', path.join(out, 'report.json'),
        '--html', path.join(out, 'report.html'),
        '--predictions', predictions[mode],
        '--submission', path.join(out, 'submission'),
      ]);
      assert.equal(code, 0);
      assert.equal(tf.memory().numTensors, tensors, 'the model is disposed and nothing leaks');
      assert.match(text, /^macro F1 \d+\.\d\d \(ABAW: mean over all 8 classes\) {2}accuracy/);
      const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as EvalReport;
      reports[mode] = report;
      assert.equal(report.mode, mode);
      // The detector finds every cartoon face: nothing is missing, every annotated frame is scored.
      assert.deepEqual(report.frames, { annotated: 48, ignored: 0, missing: 0, interpolated: 0, evaluated: 48, unscored: 0 });
      assert.deepEqual(report.videos.map((v) => v.video), ['synth_000', 'synth_001_left', 'synth_001_right']);
      assert.deepEqual(report.sweep?.map((s) => s.window), [0, 2, 5]);
      assert.equal(report.sweep![1]!.macroF1, report.macroF1, 'the sweep at the chosen window matches the report');
      assert.equal(report.confusion.flat().reduce((a, b) => a + b, 0), 48);
      await recompute(report, predictions[mode]);
      const html = await readFile(path.join(out, 'report.html'), 'utf8');
      assert.match(html, /<svg/);
      assert.match(html, /macro F1 \d/);
      const sub = await readdir(path.join(out, 'submission'));
      assert.deepEqual(sub.sort(), ['synth_000.txt', 'synth_001_left.txt', 'synth_001_right.txt']);
      const lines = (await readFile(path.join(out, 'submission', 'synth_000.txt'), 'utf8')).trim().split('\n');
      assert.equal(lines[0], ABAW_CLASSES.join(','));
      assert.equal(lines.length, 17);
      const scored = (await readPredictions(predictions[mode], CLASSES)).filter((r) => r.video === 'synth_000');
      assert.deepEqual(lines.slice(1).map(Number), scored.map((r) => r.label), 'submission labels are the scored labels');
    });
  }

  test('crops and videos score the same frames of the same annotations', async () => {
    const [c, v] = [await readPredictions(predictions.crops!, CLASSES), await readPredictions(predictions.videos!, CLASSES)];
    assert.deepEqual(
      c.map((r) => `${r.video}/${r.frame}`),
      v.map((r) => `${r.video}/${r.frame}`),
    );
    for (const r of [...c, ...v]) assert.ok(Math.abs(r.dist.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  });

  test('crops cut by the pipeline itself give the same predictions as --videos', async () => {
    // ABAW's crops come from its own aligner, so in general the two modes see different pixels.
    // Cropping with the pipeline's own decoder, landmarks and alignment removes that difference:
    // what is left to compare is frame ↔ line alignment, the left / right choice and the common
    // post-processing, which must then agree to float tolerance.
    const crops = path.join(dir, 'pipeline-crops');
    const model = await loadFaceModel(weights);
    const engine = await createEngine({ model, settings: readSettings() });
    try {
      for (const [video, names] of [['synth_000', ['synth_000']], ['synth_001', ['synth_001_left', 'synth_001_right']]] as const) {
        const file = path.join(fx.videos, `${video}.mp4`);
        const outputs: FrameOutput[] = [];
        for await (const o of engine.labelVideo(file)) outputs.push(o);
        const source = openSource({ kind: 'file', path: file, input: file });
        let i = 0;
        for await (const frame of source.frames()) {
          // Left to right in this frame, independently of the tracker's ids.
          const faces = [...outputs[i]!.results].sort((a, b) => a.box.x - b.box.x);
          assert.equal(faces.length, names.length, `frame ${i} of ${video}`);
          for (const [k, name] of names.entries()) {
            await mkdir(path.join(crops, name), { recursive: true });
            const crop = alignFace(frame, faces[k]!.landmarks5, model.inputSize);
            // Lossless PNG bytes under ABAW's .jpg name (the decoder goes by content).
            await sharp(crop, { raw: { width: model.inputSize, height: model.inputSize, channels: 3 } }).png().toFile(path.join(crops, name, `${String(i + 1).padStart(5, '0')}.jpg`));
          }
          i++;
        }
        assert.equal(i, 16);
      }
    } finally {
      await engine.close();
    }
    const pred = path.join(dir, 'pipeline-crops.csv');
    const { code } = await evalCli(['--annotations', fx.annotations, '--crops', crops, '--weights', weights, '--smoothing', 'centred', '--window', '2', '--predictions', pred]);
    assert.equal(code, 0);
    const [c, v] = [await readPredictions(pred, CLASSES), await readPredictions(predictions.videos!, CLASSES)];
    assert.equal(c.length, 48);
    assert.deepEqual(c.map((r) => `${r.video}/${r.frame}/${r.label}`), v.map((r) => `${r.video}/${r.frame}/${r.label}`));
    c.forEach((r, n) => r.dist.forEach((p, k) => assert.ok(Math.abs(p - v[n]!.dist[k]!) <= 1e-5, `${r.video} frame ${r.frame}: ${p} vs ${v[n]!.dist[k]}`)));
    // The check has teeth: the two people of synth_001 get different distributions.
    const left = c.filter((r) => r.video === 'synth_001_left');
    const right = c.filter((r) => r.video === 'synth_001_right');
    assert.ok(left.some((r, n) => r.dist.some((p, k) => Math.abs(p - right[n]!.dist[k]!) > 1e-3)));
  });

  test('--missing skip leaves frames without a crop unscored; interpolate scores them', async () => {
    const crops = path.join(dir, 'crops-gaps');
    await cp(fx.crops, crops, { recursive: true });
    for (const f of ['00003.jpg', '00004.jpg', '00016.jpg']) await rm(path.join(crops, 'synth_000', f));
    const skip = path.join(dir, 'skip.json');
    const interp = path.join(dir, 'interp.json');
    assert.equal((await evalCli(['--annotations', fx.annotations, '--crops', crops, '--weights', weights, '--missing', 'skip', '--out', skip])).code, 0);
    assert.equal((await evalCli(['--annotations', fx.annotations, '--crops', crops, '--weights', weights, '--out', interp, '--predictions', path.join(dir, 'interp.csv')])).code, 0);
    const s = JSON.parse(await readFile(skip, 'utf8')) as EvalReport;
    const i = JSON.parse(await readFile(interp, 'utf8')) as EvalReport;
    assert.deepEqual(s.frames, { annotated: 48, ignored: 0, missing: 3, interpolated: 0, evaluated: 45, unscored: 3 });
    assert.deepEqual(i.frames, { annotated: 48, ignored: 0, missing: 3, interpolated: 3, evaluated: 48, unscored: 0 });
    assert.equal(s.videos[0]!.missing, 3);
    const rows = await readPredictions(path.join(dir, 'interp.csv'), CLASSES);
    const at = (f: number) => rows.find((r) => r.video === 'synth_000' && r.frame === f)!.dist;
    for (let k = 0; k < 8; k++) assert.ok(Math.abs(at(16)[k]! - at(15)[k]!) < 2e-6, 'the last frame holds its neighbour');
  });

  test('malformed annotations stop eval before any model work, naming file and line', async () => {
    const ann = path.join(dir, 'bad-ann');
    await cp(fx.annotations, ann, { recursive: true });
    const file = path.join(ann, 'synth_001_left.txt');
    const lines = (await readFile(file, 'utf8')).split('\n');
    lines[5] = '9';
    await writeFile(file, lines.join('\n'));
    await assert.rejects(evalCli(['--annotations', ann, '--crops', fx.crops, '--weights', path.join(dir, 'no-such-model')]), {
      message: `${file}:6: label 9 out of range -1..7`,
    });
  });

  test('--videos refuses an annotation with more lines than the video has frames', async () => {
    const ann = path.join(dir, 'long-ann');
    await rm(ann, { recursive: true, force: true });
    await cp(path.join(fx.annotations, 'synth_000.txt'), path.join(ann, 'synth_000.txt'));
    await writeFile(path.join(ann, 'synth_000.txt'), `${await readFile(path.join(ann, 'synth_000.txt'), 'utf8')}0\n0\n`);
    await assert.rejects(evalCli(['--annotations', ann, '--videos', fx.videos, '--weights', weights]), {
      message: `${path.join(ann, 'synth_000.txt')}:18: 18 labels but the video has only 16 frames`,
    });
  });

  test('usage errors: both or neither of --crops / --videos', async () => {
    const err = console.error;
    console.error = () => undefined;
    try {
      assert.equal((await evalCli(['--annotations', fx.annotations])).code, 2);
      assert.equal((await evalCli(['--annotations', fx.annotations, '--crops', fx.crops, '--videos', fx.videos])).code, 2);
    } finally {
      console.error = err;
    }
  });
});

/** An engine that plays back scripted frames: face boxes and distributions chosen by the test. */
function scriptedEngine(frames: FrameOutput[]): Pick<Engine, 'labelVideo'> {
  return {
    async *labelVideo(_file: string, options: LabelOptions = {}) {
      assert.deepEqual(options.smoothing, { kind: 'none' }, 'eval smooths itself, from raw distributions');
      yield* frames;
    },
  };
}

const face = (track: number, x: number, cls: number) => {
  const dist = CLASSES.map((_, i) => (i === cls ? 0.65 : 0.05));
  return { track, box: { x, y: 10, w: 50, h: 50 }, landmarks5: [], primary: dist, corrected: dist, confidence: 0.5, label: CLASSES[cls]!, smoothed: dist, smoothedLabel: CLASSES[cls]! };
};

describe('--videos: frame i ↔ line i, left / right tracks, missing faces', () => {
  test('left and right annotations follow the left-most and right-most tracks', async () => {
    const videos = path.join(dir, 'scripted');
    await rm(videos, { recursive: true, force: true });
    await cp(fx.videos, videos, { recursive: true });
    // Frame f: track 7 on the right says class f % 8, track 3 on the left says (f + 4) % 8;
    // track 3 vanishes in frame 2 and a short-lived track 9 appears in the middle.
    const frames: FrameOutput[] = Array.from({ length: 16 }, (_, f) => {
      const results = [face(7, 200, f % 8)];
      if (f !== 2) results.push(face(3, 20, (f + 4) % 8));
      if (f === 8) results.push(face(9, 120, 0));
      return { stream: 'x', frame: f, ptsMs: f * 40, faces: results.length, results };
    });
    const anns = (await readAnnotationDir(fx.annotations)).filter((a) => a.name.startsWith('synth_001'));
    const raw = await collectVideos(anns, videos, scriptedEngine(frames), {});
    const label = (d: number[] | null) => (d ? d.indexOf(Math.max(...d)) : null);
    assert.deepEqual(raw.get('synth_001_right')!.map(label), frames.map((_, f) => f % 8));
    assert.deepEqual(raw.get('synth_001_left')!.map(label), frames.map((_, f) => (f === 2 ? null : (f + 4) % 8)));
  });

  test('a one-person video follows its longest track; a missing video is named', async () => {
    const frames: FrameOutput[] = Array.from({ length: 16 }, (_, f) => {
      const results = f < 12 ? [face(1, 50, 6)] : [];
      if (f < 3) results.push(face(2, 150, 1));
      return { stream: 'x', frame: f, ptsMs: f * 40, faces: results.length, results };
    });
    const anns = (await readAnnotationDir(fx.annotations)).filter((a) => a.name === 'synth_000');
    const raw = await collectVideos(anns, fx.videos, scriptedEngine(frames), {});
    assert.deepEqual(raw.get('synth_000')!.map((d) => (d ? d.indexOf(Math.max(...d)) : null)), [...new Array(12).fill(6), null, null, null, null]);
    await assert.rejects(collectVideos(anns, path.join(dir, 'model'), scriptedEngine(frames), {}), /no video for annotation "synth_000"/);
  });
});
