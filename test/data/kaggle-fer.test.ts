/**
 * FER2013: class-name matching for its folder layout, and the Kaggle fer2013.csv reader on small
 * generated files (never the real data set).
 */
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { BASIC7_CLASSES, canonicalClass, classIndexer, openFer2013Csv, openFolderDataset, parseFer2013Pixels } from '../../src/model/data/index.js';
import { readLocatedLines } from '../../src/model/data/lines.js';
import { openDataSpec, parseDataSpec } from '../../src/model/train/data.js';
import { collect } from '../support/async.js';
import { tempDir, writeText } from './fixtures.js';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await tempDir()));
after(() => cleanup());

/** 2304 values: pixel i is (seed + i) mod 256, so each row's image is known exactly. */
const pixels = (seed: number, count = 2304) => Array.from({ length: count }, (_, i) => (seed + i) % 256).join(' ');
const row = (emotion: number | string, seed: number, usage = 'Training') => `${emotion},${pixels(seed)},${usage}`;

describe('class names', () => {
  test('synonyms match case-insensitively, each onto its own class', () => {
    const groups = [
      ['angry', 'Anger', 'ANGRY', ' anger '],
      ['happy', 'Happiness', 'HAPPY'],
      ['sad', 'Sadness', 'SAD'],
      ['fear', 'Fearful', 'FEAR'],
      ['disgust', 'Disgusted', 'DISGUST'],
      ['surprise', 'Surprised', 'SURPRISE'],
      ['neutral', 'Neutral', 'NEUTRAL'],
      ['contempt', 'Contempt'],
    ];
    for (const names of groups) assert.equal(new Set(names.map(canonicalClass)).size, 1, names.join(' / '));
    assert.equal(new Set(groups.map((g) => canonicalClass(g[0]!))).size, groups.length);
  });

  test("FER2013's folder names map onto the default 7-class order; contempt is not in it", () => {
    const indexOf = classIndexer(BASIC7_CLASSES);
    const folders = ['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise'];
    assert.deepEqual(
      folders.map((f) => BASIC7_CLASSES[indexOf(f)]),
      ['Anger', 'Disgust', 'Fear', 'Happiness', 'Neutral', 'Sadness', 'Surprise'],
    );
    assert.equal(indexOf('contempt'), -1);
    assert.equal(classIndexer([...BASIC7_CLASSES, 'Contempt'])('CONTEMPT'), 7);
  });

  test('the FER2013 folder layout opens with the default classes', async () => {
    const root = path.join(dir, 'folders');
    for (const [folder, value] of [['happy', 10], ['Angry', 20], ['surprise', 30]] as const) {
      await mkdir(path.join(root, folder), { recursive: true });
      await sharp(Buffer.alloc(48 * 48, value), { raw: { width: 48, height: 48, channels: 1 } }).jpeg().toFile(path.join(root, folder, '0.jpg'));
    }
    const ds = await openFolderDataset({ root, classes: BASIC7_CLASSES });
    assert.deepEqual(ds.problems, []);
    assert.deepEqual(ds.counts.perClass, [0, 1, 0, 0, 1, 0, 1]);
  });
});

describe('fer2013.csv', () => {
  test('rows map by name onto the class list; usage filters; load gives the row as 3 equal channels', async () => {
    const file = path.join(dir, 'good', 'fer2013.csv');
    await writeText(file, ['emotion,pixels,Usage', row(0, 0), row(3, 1, 'PublicTest'), row(6, 2, 'PrivateTest'), row(4, 3)].join('\r\n') + '\r\n');
    const all = await openFer2013Csv({ file });
    assert.deepEqual(all.problems, []);
    const recs = await collect(all.records());
    // Angry, Happy, Neutral, Sad in BASIC7 order (Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise).
    assert.deepEqual(recs.map((r) => r.label), [1, 4, 0, 5]);
    assert.deepEqual(recs.map((r) => r.path), [2, 3, 4, 5].map((n) => `${path.resolve(file)}:${n}`));
    assert.deepEqual(all.counts.perClass, [1, 1, 0, 0, 1, 1, 0]);

    const px = await all.load(recs[1]!, 48);
    assert.equal(px.length, 48 * 48 * 3);
    for (const i of [0, 1, 47, 48, 1000, 2303]) assert.deepEqual([...px.subarray(3 * i, 3 * i + 3)], new Array(3).fill((1 + i) % 256), `pixel ${i}`);
    assert.equal((await all.load(recs[0]!, 24)).length, 24 * 24 * 3);

    const train = await openFer2013Csv({ file, usage: ['Training'] });
    assert.deepEqual((await collect(train.records())).map((r) => r.label), [1, 5]);
    const spec = await openDataSpec(parseDataSpec(`fer2013csv:${file},usage=PublicTest+PrivateTest`), BASIC7_CLASSES);
    assert.deepEqual((await collect(spec.records())).map((r) => r.label), [4, 0]);
    const custom = await openFer2013Csv({ file, classes: ['happy', 'sad', 'other'] });
    assert.deepEqual((await collect(custom.records())).map((r) => r.label), [0, 1]);
    assert.equal(custom.counts.unmapped, 2);
  });

  test('every kind of malformed row is reported with file and line and skipped', async () => {
    const file = path.join(dir, 'bad', 'fer2013.csv');
    const rows = [
      'emotion,pixels,Usage', // 1 header
      row(3, 7), // 2 ok
      `3,${pixels(0)}`, // 3 two columns
      `3,${pixels(0)},Training,extra`, // 4 four columns
      row('2.5', 0), // 5 non-integer emotion
      row('happy', 0), // 6 non-integer emotion
      row(7, 0), // 7 out of range
      row(-1, 0), // 8 out of range
      `1,${pixels(0, 2303)},Training`, // 9 too few pixels
      `1,${pixels(0, 2305)},Training`, // 10 too many pixels
      `1,${pixels(0).replace(/^0 1 2/, '0 1 256')},Training`, // 11 value > 255
      `1,${pixels(0).replace(/^0 1 2/, '0 1 -2')},Training`, // 12 negative
      `1,${pixels(0).replace(/^0 1 2/, '0 1 x7')},Training`, // 13 non-numeric
      `1,${pixels(0).replace(/^0 1 2/, '0 1 2.5')},Training`, // 14 non-integer
      row(1, 0, 'Validation'), // 15 unknown usage
      '', // 16 blank: ignored
      row(5, 9, 'PrivateTest'), // 17 ok
    ];
    await writeText(file, rows.join('\n'));
    const ds = await openFer2013Csv({ file });
    assert.deepEqual(
      ds.problems.map((p) => [p.file, p.line]),
      [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15].map((line) => [file, line]),
    );
    const message = (line: number) => ds.problems.find((p) => p.line === line)!.message;
    assert.match(message(3), /expected 3 columns, got 2/);
    assert.match(message(4), /expected 3 columns, got 4/);
    assert.match(message(5), /emotion "2\.5" is not an integer/);
    assert.match(message(6), /emotion "happy" is not an integer/);
    assert.match(message(7), /emotion 7 out of range 0\.\.6/);
    assert.match(message(8), /emotion -1 out of range 0\.\.6/);
    assert.match(message(9), /expected 2304 pixel values \(48x48\), got 2303/);
    assert.match(message(10), /got 2305/);
    assert.match(message(11), /pixel 3 value 256 out of range 0\.\.255/);
    assert.match(message(12), /pixel 3 "-2" is not a whole number/);
    assert.match(message(13), /pixel 3 "x7" is not a whole number/);
    assert.match(message(14), /pixel 3 "2\.5" is not a whole number/);
    assert.match(message(15), /Usage "Validation" is not one of Training, PublicTest, PrivateTest/);
    const recs = await collect(ds.records());
    assert.deepEqual(recs.map((r) => [r.path, r.label]), [[`${path.resolve(file)}:2`, 4], [`${path.resolve(file)}:17`, 6]]); // Happy, Surprise
    assert.deepEqual([...(await ds.load(recs[1]!, 48)).subarray(0, 6)], [9, 9, 9, 10, 10, 10]);
  });

  test('rows of splits not asked for are not checked beyond column count and Usage', async () => {
    const file = path.join(dir, 'filter', 'fer2013.csv');
    await writeText(file, ['emotion,pixels,Usage', row(9, 0, 'PublicTest'), '1,1 2 3,PrivateTest', row(2, 0)].join('\n'));
    const ds = await openFer2013Csv({ file, usage: ['Training'] });
    assert.deepEqual(ds.problems, []);
    assert.equal(ds.counts.records, 1);
  });

  test('a missing header is reported and the file skipped; the columns may come in any order', async () => {
    const headless = path.join(dir, 'headless.csv');
    await writeText(headless, [row(3, 0), row(4, 0)].join('\n'));
    const ds = await openFer2013Csv({ file: headless });
    assert.equal(ds.counts.records, 0);
    assert.equal(ds.problems.length, 1);
    assert.deepEqual([ds.problems[0]!.file, ds.problems[0]!.line], [headless, 1]);
    assert.match(ds.problems[0]!.message, /missing header: expected emotion,pixels,Usage.*no emotion, pixels, Usage column.*file skipped/);

    const reordered = path.join(dir, 'reordered.csv');
    await writeText(reordered, ['\uFEFFUsage, emotion, "pixels"', `PublicTest,3,"${pixels(5)}"`].join('\n'));
    const ds2 = await openFer2013Csv({ file: reordered });
    assert.deepEqual(ds2.problems, []);
    const [rec] = await collect(ds2.records());
    assert.equal(rec!.label, 4);
    assert.deepEqual([...(await ds2.load(rec!, 48)).subarray(0, 3)], [5, 5, 5]);

    const empty = path.join(dir, 'empty.csv');
    await writeText(empty, '');
    assert.equal((await openFer2013Csv({ file: empty })).counts.records, 0);
  });

  test('unknown usage names and unknown spec options are refused at once', async () => {
    await assert.rejects(openFer2013Csv({ file: 'x.csv', usage: ['Training', 'Test' as 'Training'] }), /x\.csv: usage "Test" is not one of Training, PublicTest, PrivateTest/);
    assert.throws(() => parseDataSpec('fer2013csv:x.csv,split=Training'), /"split=Training" is not an option of fer2013csv \(usage=\.\.\./);
    assert.deepEqual(parseDataSpec('fer2013csv:/d/f.csv,usage=Training'), { kind: 'fer2013csv', path: '/d/f.csv', options: { usage: 'Training' } });
  });

  test('the pixel parser takes tabs and repeated spaces, and names the first bad value', () => {
    const grey = parseFer2013Pixels(`  ${pixels(0).replace(' ', '\t').replace(' ', '   ')}  `);
    assert.ok(grey instanceof Uint8Array);
    assert.deepEqual([...grey.subarray(0, 4)], [0, 1, 2, 3]);
    assert.equal(parseFer2013Pixels(''), 'expected 2304 pixel values (48x48), got 0');
    assert.equal(parseFer2013Pixels(`${pixels(0, 10)} 1e3 ${pixels(0, 2293)}`), 'pixel 11 "1e3" is not a whole number');
  });

  test('located lines give byte ranges that read back each line: CRLF, BOM, lines longer than a read, no final newline', async () => {
    const file = path.join(dir, 'lines.txt');
    const long = 'x'.repeat(200_000);
    await writeText(file, `\uFEFFfirst\r\nsécond\n\n${long}\r\nlast`);
    const raw = await readFile(file);
    const lines = await collect(readLocatedLines(file));
    assert.deepEqual(lines.map((l) => [l.line, l.text]), [[1, 'first'], [2, 'sécond'], [3, ''], [4, long], [5, 'last']]);
    for (const l of lines.slice(1)) assert.equal(raw.toString('utf8', l.offset, l.offset + l.length), l.text);
    assert.equal(raw.toString('utf8', lines[0]!.offset, lines[0]!.offset + lines[0]!.length), '\uFEFFfirst');
  });
});
