/**
 * `arbex eval --images`: figures checked by hand on generated solid-colour crops scored by the
 * colour model, the detect path on real face photos (the five face tiles of a screenshot shipped
 * in @vladmandic/human's assets, and FER2013-like 48x48 grey copies of them), images without a
 * face, and bad folders.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { evaluateImages, NO_FACE, type ImagesReport } from '../../src/eval/index.js';
import { loadFaceModel } from '../../src/model/face-model.js';
import type { FaceModel } from '../../src/model/types.js';
import { ARCFACE_TEMPLATE } from '../../src/pipeline/align/index.js';
import { createFaceDetector, type FaceDetector } from '../../src/pipeline/detect/index.js';
import { evalCli, paletteModel, tinyModel } from './fixture.js';

let dir: string;
before(async () => (dir = await mkdtemp(path.join(tmpdir(), 'arbex-eval-images-'))));
after(() => rm(dir, { recursive: true, force: true }));

type Rgb = [number, number, number];
// The colour model's classes by colour: black Neutral, red Anger, green Disgust, yellow Fear,
// blue Happiness, magenta Sadness, cyan Surprise, white Other.
const RED: Rgb = [255, 0, 0];
const GREEN: Rgb = [0, 255, 0];
const BLUE: Rgb = [0, 0, 255];
const MAGENTA: Rgb = [255, 0, 255];
const BLACK: Rgb = [0, 0, 0];

async function solid(file: string, rgb: Rgb, width = 20, height = 30): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toFile(file);
}

/** The colour model, also keeping every crop it is given. */
function recording(inputSize: number): FaceModel & { crops: Uint8Array[] } {
  const base = paletteModel(inputSize);
  const crops: Uint8Array[] = [];
  return {
    ...base,
    crops,
    predict: (batch) => {
      for (const c of batch) assert.equal(c.length, inputSize * inputSize * 3, 'crops are inputSize² x 3');
      crops.push(...batch);
      return base.predict(batch);
    },
  };
}

describe('--crops on generated crops', () => {
  let root: string;
  before(async () => {
    root = path.join(dir, 'crops');
    // Folder names in other spellings and cases than the model's classes.
    await solid(path.join(root, 'Angry', 'a.png'), RED);
    await solid(path.join(root, 'Angry', 'b.png'), RED, 64, 64);
    await solid(path.join(root, 'Angry', 'c.png'), GREEN);
    await solid(path.join(root, 'happy', 'a.png'), BLUE);
    await solid(path.join(root, 'happy', 'b.png'), BLUE);
    await solid(path.join(root, 'SADNESS', 'a.png'), MAGENTA);
    await solid(path.join(root, 'SADNESS', 'b.png'), BLACK);
    // A one-channel grey image: white once it is 3 equal channels, so Other.
    await mkdir(path.join(root, 'neutral'));
    await sharp(Buffer.alloc(48 * 48, 255), { raw: { width: 48, height: 48, channels: 1 } }).png().toFile(path.join(root, 'neutral', 'grey.png'));
    await writeFile(path.join(root, 'happy', 'notes.txt'), 'not an image');
    await solid(path.join(root, '.hidden', 'x.png'), RED);
  });

  test('accuracy, macro F1 over the classes with images, per class and confusion match the hand count', async () => {
    const model = recording(48);
    const r = await evaluateImages({ dir: root, model, batchSize: 3 });
    // truth → predicted: Anger → Anger, Anger, Disgust; Happiness → Happiness x2;
    // Sadness → Sadness, Neutral; Neutral → Other. Right: 5 of 8.
    assert.equal(r.mode, 'crops');
    assert.equal(r.images, 8);
    assert.equal(model.crops.length, 8);
    assert.equal(r.missing, 0);
    assert.equal(r.accuracy, 5 / 8);
    assert.equal(r.foundAccuracy, 5 / 8);
    const by = Object.fromEntries(r.perClass.map((c) => [c.class, c]));
    assert.deepEqual(by.Anger, { class: 'Anger', precision: 1, recall: 2 / 3, f1: 0.8, support: 3, predicted: 2 });
    assert.deepEqual(by.Happiness, { class: 'Happiness', precision: 1, recall: 1, f1: 1, support: 2, predicted: 2 });
    assert.deepEqual(by.Sadness, { class: 'Sadness', precision: 1, recall: 0.5, f1: 2 / 3, support: 2, predicted: 1 });
    assert.deepEqual(by.Neutral, { class: 'Neutral', precision: 0, recall: 0, f1: 0, support: 1, predicted: 1 });
    assert.deepEqual(by.Disgust, { class: 'Disgust', precision: 0, recall: 0, f1: 0, support: 0, predicted: 1 });
    // Disgust and Other were predicted but have no folder: not in the average.
    assert.deepEqual(r.macroF1Classes, ['Neutral', 'Anger', 'Happiness', 'Sadness']);
    assert.ok(Math.abs(r.macroF1 - (0 + 0.8 + 1 + 2 / 3) / 4) < 1e-12);
    assert.deepEqual(r.columns, r.classes, 'no "no face" column for crops');
    assert.deepEqual(r.confusion, [
      [0, 0, 0, 0, 0, 0, 0, 1],
      [0, 2, 1, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 2, 0, 0, 0],
      [1, 0, 0, 0, 0, 1, 0, 0],
      [0, 0, 0, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 0, 0, 0],
    ]);
    assert.deepEqual(r.folders, [
      { folder: 'Angry', class: 'Anger', images: 3 },
      { folder: 'SADNESS', class: 'Sadness', images: 2 },
      { folder: 'happy', class: 'Happiness', images: 2 },
      { folder: 'neutral', class: 'Neutral', images: 1 },
    ]);
    assert.ok(r.seconds > 0 && Math.abs(r.imagesPerSecond - 8 / r.seconds) < 1e-9);
  });

  test('the CLI writes the same figures as JSON and HTML, with the model loaded from --weights', async () => {
    const weights = await tinyModel(path.join(dir, 'model'));
    const out = path.join(dir, 'out');
    const { code, out: text } = await evalCli(['--images', root, '--crops', '--weights', weights, '--out', path.join(out, 'r.json'), '--html', path.join(out, 'r.html'), '--batch-size', '4']);
    assert.equal(code, 0);
    assert.match(text, /^accuracy \d+\.\d\d {2}macro F1 \d+\.\d\d \(over \d classes with images\)/);
    const report = JSON.parse(await readFile(path.join(out, 'r.json'), 'utf8')) as ImagesReport;
    const model = await loadFaceModel(weights);
    try {
      const direct = await evaluateImages({ dir: root, model });
      const strip = ({ seconds: _s, imagesPerSecond: _i, ...rest }: ImagesReport) => rest;
      assert.deepEqual(strip(report), strip(direct));
    } finally {
      model.dispose();
    }
    assert.equal(report.confusion.flat().reduce((a, b) => a + b, 0), 8);
    const html = await readFile(path.join(out, 'r.html'), 'utf8');
    assert.match(html, /<svg[^]*<\/svg>/);
    assert.match(html, new RegExp(`accuracy ${(100 * report.accuracy).toFixed(2)}%`));
    assert.match(html, /<td>SADNESS<\/td><td>Sadness<\/td><td>2<\/td>/);
    assert.doesNotMatch(html, /<script|src=|href=/, 'self-contained');
  });
});

describe('detect path on real faces', () => {
  let root: string;
  let detector: FaceDetector;
  before(async () => {
    detector = await createFaceDetector({ detectEvery: 1 });
    root = path.join(dir, 'photos');
    // Five face tiles (150x155, four in colour, one grey) of a screenshot in the human package.
    const human = path.dirname(createRequire(import.meta.url).resolve('@vladmandic/human'));
    const shot = path.join(human, '..', 'assets', 'screenshot-facedetect.jpg');
    await mkdir(path.join(root, 'happy'), { recursive: true });
    await mkdir(path.join(root, 'sad'), { recursive: true });
    for (const [i, left] of [7, 164, 321, 478, 635].entries()) {
      const tile = await sharp(shot).extract({ left, top: 345, width: 150, height: 155 }).png().toBuffer();
      await writeFile(path.join(root, 'happy', `${i}.png`), tile);
      // As FER2013 has them: 48x48 grey, the face filling the image.
      await sharp(tile).resize(48, 48, { fit: 'fill' }).greyscale().jpeg().toFile(path.join(root, 'sad', `${i}.jpg`));
    }
    // No face: a flat grey image, noise, and a colour gradient.
    await solid(path.join(root, 'neutral', 'flat.png'), [128, 128, 128], 200, 150);
    const noise = Buffer.from(Array.from({ length: 96 * 96 * 3 }, (_, i) => (i * 7919) % 251));
    await sharp(noise, { raw: { width: 96, height: 96, channels: 3 } }).png().toFile(path.join(root, 'neutral', 'noise.png'));
    const ramp = Buffer.from(Array.from({ length: 64 * 64 * 3 }, (_, i) => (i % 3 === 0 ? (i / 3) % 64 : Math.floor(i / 192)) * 4));
    await sharp(ramp, { raw: { width: 64, height: 64, channels: 3 } }).png().toFile(path.join(root, 'neutral', 'ramp.png'));
  });
  after(() => detector.dispose());

  test('every face is found and cropped onto the template; images without a face are missing and wrong', async () => {
    const model = recording(112);
    const r = await evaluateImages({ dir: root, model, detector });
    assert.equal(r.mode, 'detect');
    assert.equal(r.border, 0.5);
    assert.equal(r.images, 13);
    assert.equal(r.missing, 3);
    assert.equal(model.crops.length, 10, 'the five photos and their 48x48 grey copies each give a crop');
    assert.deepEqual(r.columns, [...r.classes, NO_FACE]);
    const noFace = r.columns.indexOf(NO_FACE);
    const row = (name: string) => r.confusion[r.classes.indexOf(name)]!;
    assert.equal(row('Neutral')[noFace], 3);
    assert.equal(row('Happiness')[noFace], 0);
    assert.equal(row('Sadness')[noFace], 0);
    assert.equal(row('Neutral').reduce((a, b) => a + b, 0), 3, 'no-face images are in no class column');
    const right = r.classes.reduce((sum, _, c) => sum + r.confusion[c]![c]!, 0);
    assert.equal(r.accuracy, right / 13, 'missing images count as wrong');
    assert.equal(r.foundAccuracy, right / 10);
    assert.equal(r.perClass.find((c) => c.class === 'Neutral')!.recall, 0);

    // Each crop is an aligned face: found again inside it, its eyes sit on the ArcFace template
    // (the colour model names no crop template).
    for (const [i, crop] of model.crops.entries()) {
      const pad = 56;
      const padded = await sharp(crop, { raw: { width: 112, height: 112, channels: 3 } }).extend({ top: pad, bottom: pad, left: pad, right: pad, background: { r: 0, g: 0, b: 0 } }).raw().toBuffer();
      detector.reset();
      const [face] = await detector.detect({ index: 0, ptsMs: 0, width: 224, height: 224, data: new Uint8Array(padded) });
      assert.ok(face, `crop ${i} holds a face`);
      for (const k of [0, 1]) {
        const [x, y] = face.landmarks5[k]!;
        const [tx, ty] = ARCFACE_TEMPLATE[k]!;
        assert.ok(Math.hypot(x - pad - tx, y - pad - ty) < 6, `crop ${i}: eye ${k} at ${[x - pad, y - pad]}, template ${[tx, ty]}`);
      }
    }
  });

  test("with a crop template, faces are framed the model's way", async () => {
    // ArcFace's points shrunk by half around the centre: the face fills half the crop.
    const template = ARCFACE_TEMPLATE.map(([x, y]) => [0.5 + (x / 112 - 0.5) / 2, 0.5 + (y / 112 - 0.5) / 2] as const);
    const base = recording(112);
    const r = await evaluateImages({ dir: root, model: { ...base, cropTemplate: template }, detector });
    assert.equal(r.missing, 3);
    for (const [i, crop] of base.crops.slice(0, 5).entries()) {
      detector.reset();
      const [face] = await detector.detect({ index: 0, ptsMs: 0, width: 112, height: 112, data: crop });
      assert.ok(face, `crop ${i} holds a face`);
      for (const k of [0, 1]) {
        const [x, y] = face.landmarks5[k]!;
        const [tx, ty] = template[k]!;
        assert.ok(Math.hypot(x - tx * 112, y - ty * 112) < 4, `crop ${i}: eye ${k} at ${[x, y]}, template ${[tx * 112, ty * 112]}`);
      }
    }
  });
});

describe('bad folders and options', () => {
  const model = paletteModel(48);

  test('a folder that matches no model class is an error naming every such folder', async () => {
    const root = path.join(dir, 'unknown');
    await solid(path.join(root, 'happy', 'a.png'), BLUE);
    await solid(path.join(root, 'contempt', 'a.png'), BLUE);
    await solid(path.join(root, 'bored', 'a.png'), BLUE);
    await assert.rejects(evaluateImages({ dir: root, model }), {
      message: `${root}: folders "bored", "contempt" match no class of the model (Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise, Other)`,
    });
  });

  test('a missing folder, a file, an empty folder or images without class folders are errors', async () => {
    const gone = path.join(dir, 'gone');
    await assert.rejects(evaluateImages({ dir: gone, model }), { message: `${gone}: no such folder (expected <dir>/<class>/<image>)` });
    const file = path.join(dir, 'file.png');
    await solid(file, RED);
    await assert.rejects(evaluateImages({ dir: file, model }), /file\.png: no such folder/);
    const flat = path.join(dir, 'flat');
    await solid(path.join(flat, 'a.png'), RED);
    await mkdir(path.join(flat, 'happy'));
    await assert.rejects(evaluateImages({ dir: flat, model }), { message: new RegExp(`^${flat}: no images in class folders \\(expected <dir>/<class>/<image>`) });
  });

  test('an image that does not decode stops the run, naming the file', async () => {
    const root = path.join(dir, 'corrupt');
    await solid(path.join(root, 'happy', 'a.png'), BLUE);
    await mkdir(path.join(root, 'sad'));
    await writeFile(path.join(root, 'sad', 'b.jpg'), 'not a JPEG');
    const file = path.join(root, 'sad', 'b.jpg');
    await assert.rejects(evaluateImages({ dir: root, model }), (e: Error) => e.message.startsWith(`${file}: `));
    await assert.rejects(evaluateImages({ dir: root, model, detector: { detect: async () => [], reset: () => undefined, dispose: () => undefined } }), (e: Error) => e.message.startsWith(`${file}: `));
  });

  test('CLI: usage errors and option checks', async () => {
    const root = path.join(dir, 'crops');
    await assert.rejects(evalCli(['--images']), /--images <value>' argument missing/);
    const usage = await evalCli(['--images', root, 'extra']);
    assert.equal(usage.code, 2);
    assert.match(usage.err, /usage: arbex eval --images DIR \[--crops\]/);
    await assert.rejects(evalCli(['--images', root, '--border', 'wide']), { message: '--border must be a number >= 0 (got "wide")' });
    await assert.rejects(evalCli(['--images', root, '--crops', '--border', '0.5']), { message: '--border applies to detection; leave it out with --crops' });
    await assert.rejects(evalCli(['--images', root, '--crops', '--batch-size', '0']), /--batch-size must be an integer >= 1/);
    const help = await evalCli(['--images', root, '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /--images DIR[^]*--annotations DIR/);
  });
});
