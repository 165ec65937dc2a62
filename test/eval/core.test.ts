/** Evaluation pieces without a model: strict annotations, series, scoring, reports, files. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  AnnotationError,
  buildSubmission,
  checkFrameCount,
  confusionSvg,
  createProgress,
  openAtomic,
  pickTrack,
  predictionLine,
  predictionsHeader,
  predictSeries,
  progressText,
  readAnnotation,
  readAnnotationDir,
  readPredictions,
  reportHtml,
  scorePredictions,
  scoreSeries,
  splitAnnotationName,
  type RawSeries,
} from '../../src/eval/index.js';
import { smoothingOption, windowList } from '../../src/eval/options.js';
import { ABAW_CLASSES } from '../../src/model/data/classes.js';

const HEADER = ABAW_CLASSES.join(',');
const CLASSES = [...ABAW_CLASSES];
let dir: string;
before(async () => (dir = await mkdtemp(path.join(tmpdir(), 'arbex-eval-core-'))));
after(() => rm(dir, { recursive: true, force: true }));

const onehot = (c: number, L = 8, p = 0.9) => Array.from({ length: L }, (_, i) => (i === c ? p : (1 - p) / (L - 1)));

async function annotationFile(name: string, text: string): Promise<string> {
  const file = path.join(dir, `${name}.txt`);
  await writeFile(file, text);
  return file;
}

describe('strict annotation reading', () => {
  test('a good file: labels per frame, -1 kept, CRLF and trailing blank lines accepted', async () => {
    const file = await annotationFile('good', `${HEADER}\r\n0\r\n-1\r\n7\r\n3\r\n\r\n`);
    const a = await readAnnotation(file);
    assert.equal(a.name, 'good');
    assert.deepEqual(a.labels, [0, -1, 7, 3]);
  });

  const bad: [string, string, number, RegExp][] = [
    ['bad header', 'Neutral,Anger,Disgust,Fear,Happy,Sadness,Surprise,Other\n0\n', 1, /bad header/],
    ['non-integer line', `${HEADER}\n0\n1\nhappy\n2\n`, 4, /not an integer/],
    ['fractional line', `${HEADER}\n0\n1.5\n`, 3, /not an integer/],
    ['label out of range', `${HEADER}\n0\n8\n`, 3, /out of range -1\.\.7/],
    ['label below -1', `${HEADER}\n-2\n`, 2, /out of range/],
    ['gap inside the labels', `${HEADER}\n0\n\n1\n`, 3, /empty line/],
    ['empty file', '', 1, /empty file/],
  ];
  for (const [what, text, line, message] of bad) {
    test(`refuses: ${what}, naming file and line`, async () => {
      const file = await annotationFile(what.replace(/ /g, '_'), text);
      await assert.rejects(readAnnotation(file), (e: unknown) => {
        assert.ok(e instanceof AnnotationError);
        assert.equal(e.file, file);
        assert.equal(e.line, line);
        assert.match(e.message, message);
        assert.ok(e.message.startsWith(`${file}:${line}: `), e.message);
        return true;
      });
    });
  }

  test('more lines than frames names the first line without a frame', async () => {
    const file = await annotationFile('long', `${HEADER}\n0\n1\n2\n3\n`);
    const a = await readAnnotation(file);
    checkFrameCount(a, 4);
    assert.throws(() => checkFrameCount(a, 2), (e: unknown) => e instanceof AnnotationError && e.line === 4 && e.message === `${file}:4: 4 labels but the video has only 2 frames`);
  });

  test('a directory is read whole and refused on its first bad file', async () => {
    const sub = path.join(dir, 'set');
    await rm(sub, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(sub));
    await writeFile(path.join(sub, 'a.txt'), `${HEADER}\n0\n`);
    await writeFile(path.join(sub, 'b_left.txt'), `${HEADER}\n1\n`);
    await writeFile(path.join(sub, 'notes.md'), 'ignored');
    assert.deepEqual((await readAnnotationDir(sub)).map((a) => a.name), ['a', 'b_left']);
    await writeFile(path.join(sub, 'c.txt'), `${HEADER}\n0\n9\n`);
    await assert.rejects(readAnnotationDir(sub), /c\.txt:3: label 9 out of range/);
  });

  test('left / right names', () => {
    assert.deepEqual(splitAnnotationName('10-60-1280x720_right'), { video: '10-60-1280x720', side: 'right' });
    assert.deepEqual(splitAnnotationName('vid_left'), { video: 'vid', side: 'left' });
    assert.deepEqual(splitAnnotationName('video_5'), { video: 'video_5', side: 'single' });
  });
});

describe('series: smoothing and missing frames', () => {
  const raw: RawSeries = [onehot(0), null, onehot(2), onehot(2), null];

  test('none + interpolate: observed frames raw, missing ones interpolated or held', () => {
    const p = predictSeries(raw, { smoothing: { kind: 'none' }, missing: 'interpolate' });
    assert.deepEqual(p.map((x) => x?.observed), [true, false, true, true, false]);
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(p[1]!.dist[i]! - (onehot(0)[i]! + onehot(2)[i]!) / 2) < 1e-12);
    assert.deepEqual(p[4]!.dist, p[3]!.dist);
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(p[0]!.dist[i]! - onehot(0)[i]!) < 1e-12);
  });

  test('skip leaves missing frames unpredicted; an empty series predicts nothing', () => {
    const p = predictSeries(raw, { smoothing: { kind: 'none' }, missing: 'skip' });
    assert.deepEqual(p.map((x) => x?.label), [0, undefined, 2, 2, undefined]);
    assert.deepEqual(predictSeries([null, null], { smoothing: { kind: 'centred', window: 3 }, missing: 'interpolate' }), [undefined, undefined]);
  });

  test('centred smoothing averages ±window frames; ema follows the causal smoother', () => {
    const s: RawSeries = [onehot(1), onehot(1), onehot(5), onehot(1), onehot(1)];
    const c = predictSeries(s, { smoothing: { kind: 'centred', window: 1 }, missing: 'interpolate' });
    assert.equal(c[2]!.label, 1, 'a one-frame blip is smoothed away');
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(c[2]!.dist[i]! - (2 * onehot(1)[i]! + onehot(5)[i]!) / 3) < 1e-12);
    const e = predictSeries(s, { smoothing: { kind: 'ema', alpha: 0.5 }, missing: 'interpolate' });
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(e[2]!.dist[i]! - (onehot(1)[i]! + onehot(5)[i]!) / 2) < 1e-12);
  });
});

describe('scoring', () => {
  const ann = [
    { name: 'v1', file: 'v1.txt', labels: [0, 0, 1, -1, 2] },
    { name: 'v2_left', file: 'v2_left.txt', labels: [4, 4] },
  ];

  test('a known confusion gives exact per-class and macro F1 (ABAW: mean over all 8 classes)', () => {
    // truth 0,0,1,2,4,4 ; predicted 0,1,1,2,4,0
    const rows = [
      { video: 'v1', frame: 1, label: 0, dist: onehot(0) },
      { video: 'v1', frame: 2, label: 1, dist: onehot(1) },
      { video: 'v1', frame: 3, label: 1, dist: onehot(1) },
      { video: 'v1', frame: 5, label: 2, dist: onehot(2) },
      { video: 'v2_left', frame: 1, label: 4, dist: onehot(4) },
      { video: 'v2_left', frame: 2, label: 0, dist: onehot(0) },
    ];
    const { overall, videos } = scorePredictions(rows, ann, CLASSES);
    assert.equal(overall.confusion[0]![0], 1);
    assert.equal(overall.confusion[0]![1], 1);
    assert.equal(overall.confusion[4]![0], 1);
    // F1: Neutral 2·1/(2+2)=0.5, Anger 2/(1+2)=2/3, Disgust 1, Happiness 2/(2+1)=2/3
    const f1 = overall.perClass.map((c) => c.f1);
    assert.deepEqual(f1.map((x) => Math.round(x * 1e12) / 1e12), [0.5, 0.666666666667, 1, 0, 0.666666666667, 0, 0, 0]);
    assert.ok(Math.abs(overall.macroF1 - (0.5 + 2 / 3 + 1 + 2 / 3) / 8) < 1e-12);
    assert.ok(Math.abs(overall.macroF1Present - (0.5 + 2 / 3 + 1 + 2 / 3) / 4) < 1e-12);
    assert.equal(overall.accuracy, 4 / 6);
    assert.deepEqual(videos.map((v) => [v.video, v.frames]), [['v1', 4], ['v2_left', 2]]);
    // Per video, by hand, over all 8 classes. v1: truth 0,0,1,2, predicted 0,1,1,2: F1 Neutral
    // 2/3, Anger 2/3, Disgust 1. v2_left: truth 4,4, predicted 4,0: Neutral 0, Happiness 2/3.
    assert.ok(Math.abs(videos[0]!.macroF1 - (2 / 3 + 2 / 3 + 1) / 8) < 1e-12);
    assert.ok(Math.abs(videos[1]!.macroF1 - 2 / 3 / 8) < 1e-12);
    assert.deepEqual(videos.map((v) => v.accuracy), [3 / 4, 1 / 2]);
  });

  test('rows for -1 frames, unknown frames or duplicates are refused', () => {
    assert.throws(() => scorePredictions([{ video: 'v1', frame: 4, label: 0, dist: onehot(0) }], ann, CLASSES), /v1 frame 4: no annotated frame/);
    assert.throws(() => scorePredictions([{ video: 'v1', frame: 6, label: 0, dist: onehot(0) }], ann, CLASSES), /no annotated frame/);
    assert.throws(() => scorePredictions([{ video: 'zz', frame: 1, label: 0, dist: onehot(0) }], ann, CLASSES), /zz frame 1/);
    const r = { video: 'v1', frame: 1, label: 0, dist: onehot(0) };
    assert.throws(() => scorePredictions([r, r], ann, CLASSES), /appears twice/);
  });

  test('a 7-class model in its own order is scored on the ABAW classes by name', () => {
    const seven = ['Happy', 'Neutral', 'Sad', 'Angry', 'Fear', 'Disgust', 'Surprise'];
    const { overall } = scorePredictions([{ video: 'v2_left', frame: 1, label: 0, dist: onehot(0, 7) }], ann, seven);
    assert.equal(overall.confusion[4]![4], 1);
    assert.throws(() => scorePredictions([], ann, ['Neutral', 'Bored']), /"Bored" is not one of the ABAW classes/);
  });

  test('scoreSeries counts frames and its rows recompute to its report; sweep re-scores', async () => {
    const raw = new Map<string, RawSeries>([
      ['v1', [onehot(0), null, onehot(1), onehot(1), onehot(2)]],
      ['v2_left', [null, null]],
    ]);
    const ev = scoreSeries(ann, raw, { mode: 'crops', modelClasses: CLASSES, smoothing: { kind: 'none' }, missing: 'interpolate', sweep: [0, 1] });
    assert.deepEqual(ev.report.frames, { annotated: 6, ignored: 1, missing: 3, interpolated: 1, evaluated: 4, unscored: 2 });
    assert.deepEqual(ev.report.videos.map((v) => [v.video, v.frames, v.missing]), [['v1', 4, 1], ['v2_left', 0, 2]]);
    assert.equal(ev.report.sweep?.length, 2);
    assert.equal(ev.report.sweep![0]!.macroF1, ev.report.macroF1, 'centred ±0 is no smoothing');
    const file = path.join(dir, 'pred.csv');
    await writeFile(file, `${[predictionsHeader(CLASSES), ...ev.rows.map((r) => predictionLine(r, CLASSES))].join('\n')}\n`);
    const back = await readPredictions(file, CLASSES);
    assert.deepEqual(back.map((r) => [r.video, r.frame, r.label]), ev.rows.map((r) => [r.video, r.frame, r.label]));
    const again = scorePredictions(back, ann, CLASSES).overall;
    assert.equal(again.macroF1, ev.report.macroF1);
    assert.deepEqual(again.confusion, ev.report.confusion);
    const skip = scoreSeries(ann, raw, { mode: 'crops', modelClasses: CLASSES, smoothing: { kind: 'none' }, missing: 'skip' });
    assert.deepEqual(skip.report.frames, { annotated: 6, ignored: 1, missing: 3, interpolated: 0, evaluated: 3, unscored: 3 });
  });
});

describe('reports and outputs', () => {
  test('HTML is self-contained with an SVG confusion matrix and the per-class table', () => {
    const raw = new Map<string, RawSeries>([['v<1>', [onehot(0), onehot(3)]]]);
    const ev = scoreSeries([{ name: 'v<1>', file: 'x', labels: [0, 3] }], raw, { mode: 'crops', modelClasses: CLASSES, smoothing: { kind: 'none' }, missing: 'interpolate' });
    const html = reportHtml(ev.report);
    assert.match(html, /<svg [^>]*>/);
    assert.equal((confusionSvg(ev.report.confusion, CLASSES).match(/<rect /g) ?? []).length, 64);
    assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//, 'no external resources');
    assert.doesNotMatch(html, /<script/);
    assert.match(html, /v&#60;1&#62;/, 'names are escaped');
    for (const c of CLASSES) assert.match(html, new RegExp(`<td>${c}</td>`));
  });

  test('submission formats: one file per video, or one image_location file', () => {
    const preds = new Map([
      ['a', predictSeries([onehot(1), null, onehot(3)], { smoothing: { kind: 'none' }, missing: 'interpolate' })],
      ['b_left', predictSeries([null], { smoothing: { kind: 'none' }, missing: 'interpolate' })],
    ]);
    const files = buildSubmission(preds, { format: 'files', toAbaw: [0, 1, 2, 3, 4, 5, 6, 7] });
    assert.equal(files.files.get('a.txt'), `${HEADER}\n1\n1\n3\n`);
    assert.equal(files.files.get('b_left.txt'), `${HEADER}\n0\n`);
    assert.deepEqual(files.fallbackVideos, ['b_left']);
    const single = buildSubmission(preds, { format: 'single', toAbaw: [0, 1, 2, 3, 4, 5, 6, 7] });
    assert.equal(single.files.get(''), `image_location,${HEADER}\na/00001.jpg,1\na/00002.jpg,1\na/00003.jpg,3\nb_left/00001.jpg,0\n`);
  });

  test('atomic files: nothing under the final name until commit; abort leaves nothing', async () => {
    const target = path.join(dir, 'out', 'labels.csv');
    const f = await openAtomic(target);
    await f.write('a,b\n');
    assert.deepEqual(await readdir(path.dirname(target)), [path.basename(f.tempPath)]);
    await f.abort();
    assert.deepEqual(await readdir(path.dirname(target)), []);
    const g = await openAtomic(target);
    await g.write('x\n');
    await g.commit();
    await g.abort();
    assert.equal(await readFile(target, 'utf8'), 'x\n');
    assert.deepEqual(await readdir(path.dirname(target)), ['labels.csv']);
  });

  test('progress: rate and ETA; plain lines are throttled off a terminal', () => {
    assert.equal(progressText('clip', 50, 100, 2000), 'clip 50/100 frames  25.0 fps  ETA 00:02');
    assert.equal(progressText('clip', 0, undefined, 0), 'clip 0 frames  0.0 fps  ETA --:--');
    let t = 0;
    const lines: string[] = [];
    const bar = createProgress('v', { stream: { write: (s: string) => lines.push(s), isTTY: false }, lineEveryMs: 1000, now: () => t });
    for (let i = 1; i <= 30; i++) {
      t = i * 100;
      bar.update(i, 30);
    }
    bar.finish();
    assert.equal(lines.length, 4, lines.join(''));
    assert.match(lines.at(-1)!, /v 30\/30 frames {2}10\.0 fps {2}ETA 00:00/);
    const tty: string[] = [];
    const bar2 = createProgress('v', { stream: { write: (s: string) => tty.push(s), isTTY: true }, now: () => 1000 });
    bar2.update(5, 10);
    bar2.finish();
    assert.match(tty[0]!, /^\r\[#{12}-{12}\] v 5\/10/);
    assert.ok(tty.at(-1)!.endsWith('\n'));
  });

  test('track choice and option parsing', () => {
    const tracks = [
      { track: 1, frames: 10, meanX: 300 },
      { track: 2, frames: 40, meanX: 100 },
      { track: 3, frames: 5, meanX: 500 },
    ];
    assert.equal(pickTrack(tracks, 'left'), 2);
    assert.equal(pickTrack(tracks, 'right'), 3);
    assert.equal(pickTrack(tracks, 'single'), 2);
    assert.equal(pickTrack([], 'single'), undefined);
    assert.deepEqual(smoothingOption('centred', undefined, undefined), { kind: 'centred', window: 25 });
    assert.deepEqual(smoothingOption('ema', undefined, '0.5'), { kind: 'ema', alpha: 0.5 });
    assert.throws(() => smoothingOption('gauss', undefined, undefined), /--smoothing must be one of/);
    assert.throws(() => smoothingOption('trailing', '0', undefined), /--window must be an integer >= 1/);
    // The HTTP API's limits: windows up to 1000 frames, alpha in (0, 1], a centred half-width of 0 allowed.
    assert.throws(() => smoothingOption('centred', '1001', undefined), /--window: .*1000.*"1001"/);
    assert.throws(() => smoothingOption('ema', undefined, '1.5'), /--alpha: .*"1.5"/);
    assert.deepEqual(smoothingOption('centred', '0', undefined), { kind: 'centred', window: 0 });
    assert.deepEqual(smoothingOption('trailing', undefined, undefined), { kind: 'trailing', window: 10 });
    assert.deepEqual(smoothingOption('ema', undefined, undefined), { kind: 'ema', alpha: 0.3 });
    assert.deepEqual(windowList('0, 5,10'), [0, 5, 10]);
    assert.throws(() => windowList('5,x'), /--sweep-smoothing/);
  });
});
