import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { ABAW_CLASSES, BASIC7_CLASSES, openAbaw, openCsvDataset, openFolderDataset, openRafDb } from '../../src/model/data/index.js';
import { collect } from '../support/async.js';
import { tempDir, writeImage, writeText } from './fixtures.js';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await tempDir()));
after(() => cleanup());

const lines = (...rows: string[]) => rows.join('\n') + '\n';

describe('image folder', () => {
  test('discovers classes sorted, ignores non-images, decodes on demand', async () => {
    const root = path.join(dir, 'folder');
    await writeImage(path.join(root, 'sad', 'b.png'), [10, 20, 30]);
    await writeImage(path.join(root, 'happy', 'a.png'), [200, 100, 50]);
    await writeImage(path.join(root, 'happy', 'c.jpg'), [0, 0, 0]);
    await writeText(path.join(root, 'happy', 'notes.txt'), 'not an image');
    const ds = await openFolderDataset({ root });
    assert.deepEqual(ds.classes, ['happy', 'sad']);
    assert.deepEqual(ds.counts.perClass, [2, 1]);
    const recs = await collect(ds.records());
    assert.deepEqual(
      recs.map((r) => [path.relative(root, r.path), r.label, r.group]),
      [
        ['happy/a.png', 0, 'happy/a.png'],
        ['happy/c.jpg', 0, 'happy/c.jpg'],
        ['sad/b.png', 1, 'sad/b.png'],
      ],
    );
    const px = await ds.load(recs[0], 5);
    assert.equal(px.length, 5 * 5 * 3);
    assert.deepEqual([...px.subarray(0, 6)], [200, 100, 50, 200, 100, 50]);
  });

  test('maps folders to a given class list by name; unknown folders are reported', async () => {
    const root = path.join(dir, 'folder2');
    await writeImage(path.join(root, 'Happy', 'a.png'), [1, 2, 3]);
    await writeImage(path.join(root, 'contempt', 'a.png'), [1, 2, 3]);
    await writeImage(path.join(root, 'contempt', 'b.png'), [1, 2, 3]);
    const ds = await openFolderDataset({ root, classes: BASIC7_CLASSES, groupOf: (rel) => rel.split('/')[0] });
    assert.equal(ds.counts.records, 1);
    assert.equal(ds.counts.perClass[BASIC7_CLASSES.indexOf('Happiness')], 1);
    assert.equal(ds.counts.unmapped, 2);
    assert.equal(ds.problems.length, 1);
    assert.match(ds.problems[0].message, /contempt.*2 images/);
    assert.equal((await collect(ds.records()))[0].group, 'Happy');
  });

  test('greyscale and alpha images decode to 3 channels', async () => {
    const root = path.join(dir, 'grey');
    const file = path.join(root, 'x', 'g.png');
    await writeImage(file, [0, 0, 0]);
    await sharp({ create: { width: 4, height: 4, channels: 4, background: { r: 9, g: 9, b: 9, alpha: 0.5 } } }).png().toFile(path.join(root, 'x', 'a.png'));
    await sharp(Buffer.alloc(16, 77), { raw: { width: 4, height: 4, channels: 1 } }).png().toFile(file);
    const ds = await openFolderDataset({ root });
    for (const r of await collect(ds.records())) assert.equal((await ds.load(r, 3)).length, 27);
    const grey = await ds.load({ path: file, label: 0, group: '' }, 2);
    assert.deepEqual([...grey], new Array(12).fill(77));
  });
});

describe('CSV', () => {
  test('header in any order with groups; labels by name or index; paths relative to the CSV', async () => {
    const root = path.join(dir, 'csv1');
    await writeImage(path.join(root, 'img', 'a.png'), [1, 1, 1]);
    await writeImage(path.join(root, 'img', 'b.png'), [1, 1, 1]);
    await writeText(path.join(root, 'list.csv'), lines('group,label,path', 'v1,happy,img/a.png', 'v2,3,"img/b.png"'));
    const ds = await openCsvDataset({ file: path.join(root, 'list.csv'), classes: BASIC7_CLASSES });
    assert.deepEqual(ds.problems, []);
    const recs = await collect(ds.records());
    assert.deepEqual(
      recs.map((r) => [r.path, r.label, r.group]),
      [
        [path.join(root, 'img', 'a.png'), 4, 'v1'],
        [path.join(root, 'img', 'b.png'), 3, 'v2'],
      ],
    );
  });

  test('every malformed row is reported with file and line and skipped; missing images counted', async () => {
    const root = path.join(dir, 'csv2');
    await writeImage(path.join(root, 'ok.png'), [1, 1, 1]);
    const file = path.join(root, 'rows.csv');
    await writeText(
      file,
      lines(
        'ok.png,0', // 1 ok (headerless)
        'ok.png,2.5', // 2 non-integer
        'ok.png,7', // 3 out of range for 7 classes
        ',1', // 4 missing path
        'ok.png', // 5 too few columns
        '', // 6 blank: ignored
        'ok.png,Contempt', // 7 unknown class: reported once
        'ok.png,contempt', // 8 same class: counted only
        'gone.png,1', // 9 missing image
        '"ok.png,1', // 10 unterminated quote
        'ok.png,-1', // 11 out of range
        'ok.png,Sad,g', // 12 ok
      ),
    );
    const ds = await openCsvDataset({ file, classes: BASIC7_CLASSES });
    assert.deepEqual(
      ds.problems.map((p) => [p.file, p.line]),
      [2, 3, 4, 5, 7, 10, 11].map((line) => [file, line]),
    );
    assert.match(ds.problems[0].message, /not an integer/);
    assert.match(ds.problems[1].message, /out of range/);
    assert.match(ds.problems[2].message, /missing path/);
    assert.equal(ds.counts.records, 2);
    assert.equal(ds.counts.missingImages, 1);
    assert.equal(ds.counts.unmapped, 2);
    const recs = await collect(ds.records());
    assert.deepEqual(recs.map((r) => [r.label, r.group]), [[0, 'ok.png'], [5, 'g']]);
  });

  test('a header without a path column is reported and the file skipped', async () => {
    const file = path.join(dir, 'csv3', 'bad.csv');
    await writeText(file, lines('file,label', 'a.png,1'));
    const ds = await openCsvDataset({ file, classes: BASIC7_CLASSES });
    assert.equal(ds.counts.records, 0);
    assert.deepEqual(ds.problems.map((p) => p.line), [1]);
    assert.match(ds.problems[0].message, /missing path column/);
    const other = path.join(dir, 'csv3', 'other.csv');
    await writeText(other, lines('image;emotion', 'a.png;1'));
    assert.match((await openCsvDataset({ file: other, classes: BASIC7_CLASSES })).problems[0].message, /bad header/);
  });
});

describe('RAF-DB', () => {
  test('maps labels 1..7 by name, filters partitions, reports bad lines, counts missing images', async () => {
    const root = path.join(dir, 'raf');
    for (const n of ['train_00001', 'train_00002', 'train_00003', 'test_0001']) {
      await writeImage(path.join(root, 'Image', 'aligned', `${n}_aligned.jpg`), [5, 5, 5]);
    }
    const labelFile = path.join(root, 'EmoLabel', 'list_patition_label.txt');
    await writeText(
      labelFile,
      lines(
        'train_00001.jpg 1', // Surprise
        'train_00002.jpg 4', // Happiness
        'train_00003.jpg 7', // Neutral
        'train_00004.jpg 2', // no image
        'train_00005.jpg x',
        'train_00006.jpg 8',
        'train_00007.jpg',
        'test_0001.jpg 6', // Anger
      ),
    );
    const train = await openRafDb({ root, partition: 'train' });
    assert.deepEqual(train.classes, BASIC7_CLASSES);
    const recs = await collect(train.records());
    const name = (i: number) => BASIC7_CLASSES[recs[i].label];
    assert.deepEqual([name(0), name(1), name(2)], ['Surprise', 'Happiness', 'Neutral']);
    assert.equal(recs[0].path, path.join(root, 'Image', 'aligned', 'train_00001_aligned.jpg'));
    assert.equal(recs[0].group, 'train_00001');
    assert.equal(train.counts.missingImages, 1);
    assert.deepEqual(train.problems.map((p) => [p.file, p.line]), [5, 6, 7].map((l) => [labelFile, l]));

    const test7 = await openRafDb({ root, partition: 'test', classes: [...RAF_ORDER] });
    assert.deepEqual((await collect(test7.records())).map((r) => r.label), [5]);
    const all = await openRafDb({ root, classes: ['Happiness', 'Neutral'] });
    assert.deepEqual(all.counts.perClass, [1, 1]);
    assert.equal(all.counts.unmapped, 3); // Surprise, Fear (checked before its missing image), Anger
  });
});
const RAF_ORDER = ['Surprise', 'Fear', 'Disgust', 'Happiness', 'Sadness', 'Anger', 'Neutral'];

describe('Aff-Wild2 / ABAW', () => {
  const header = 'Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other';
  test('frames from line numbers, -1 skipped, missing images counted, left/right folders, bad files reported', async () => {
    const root = path.join(dir, 'abaw');
    const img = (video: string, frame: number) => writeImage(path.join(root, 'cropped_aligned', video, `${String(frame).padStart(5, '0')}.jpg`), [9, 9, 9]);
    for (const f of [1, 2, 3, 5, 6, 7]) await img('v1', f);
    await img('v2_right', 1);
    await writeText(path.join(root, 'annotations', 'v1.txt'), lines(header, '0', '-1', '4', '7', '9', 'x', '3'));
    // v1: frame 1 Neutral, 2 unlabelled, 3 Happiness, 4 Other (no image), 5 out of range, 6 bad, 7 Fear
    await writeText(path.join(root, 'annotations', 'v2_right.txt'), lines(header, '5'));
    await writeText(path.join(root, 'annotations', 'v3.txt'), lines('Neutral,Anger', '0'));
    await writeText(path.join(root, 'annotations', 'v4.txt'), lines(header, '1', '2'));
    const ds = await openAbaw({ root });
    assert.deepEqual(ds.classes, ABAW_CLASSES);
    const recs = await collect(ds.records());
    assert.deepEqual(
      recs.map((r) => [r.group, r.frame, ABAW_CLASSES[r.label], path.relative(root, r.path)]),
      [
        ['v1', 1, 'Neutral', 'cropped_aligned/v1/00001.jpg'],
        ['v1', 3, 'Happiness', 'cropped_aligned/v1/00003.jpg'],
        ['v1', 7, 'Fear', 'cropped_aligned/v1/00007.jpg'],
        ['v2_right', 1, 'Sadness', 'cropped_aligned/v2_right/00001.jpg'],
      ],
    );
    assert.equal(ds.counts.unlabelled, 1);
    assert.equal(ds.counts.missingImages, 3); // v1 frame 4, v4 frames 1-2
    const ann = (v: string) => path.join(root, 'annotations', `${v}.txt`);
    assert.deepEqual(
      ds.problems.map((p) => [p.file, p.line]),
      [
        [ann('v1'), 6],
        [ann('v1'), 7],
        [ann('v3'), 1],
        [ann('v4'), 0],
      ],
    );
    assert.match(ds.problems[2].message, /bad header/);
    // A second pass streams the same records and adds no problems.
    assert.equal((await collect(ds.records())).length, 4);
    assert.equal(ds.problems.length, 4);

    const seven = await openAbaw({ root, classes: BASIC7_CLASSES, videos: ['v1'] });
    assert.equal(seven.counts.records, 3);
    assert.equal(seven.counts.unmapped, 1); // frame 4 is Other
    assert.equal(seven.counts.missingImages, 0);
  });
});
