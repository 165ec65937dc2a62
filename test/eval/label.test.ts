/**
 * `arbex label`: CSV / JSONL schema, independence from --batch-size, folders, and no partial
 * output when a run fails or is interrupted (SIGINT). Real engine, real detector, tiny model.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run } from '../../src/cli/label.js';
import { labelToFile } from '../../src/eval/index.js';
import { splitCsvLine } from '../../src/model/data/lines.js';
import { ABAW_CLASSES } from '../../src/model/data/classes.js';
import { openMp4, renderScene, sampleIdentity, scriptTrack, trackFrame } from '../../src/model/data/synth/index.js';
import type { Engine, FrameOutput } from '../../src/pipeline/types.js';
import { csvHeader, csvWidth } from '../../src/pipeline/labels-format.js';
import { tinyModel } from './fixture.js';

const CLASSES: string[] = [...ABAW_CLASSES];
const ROOT = path.resolve(import.meta.dirname, '../..');
let dir: string;
let weights: string;
let clip: string;

/** `blank` grey frames, then `faces` frames of one synthetic person (160x160, 25 fps). */
async function syntheticClip(file: string, blank: number, faces: number): Promise<string> {
  const track = scriptTrack(sampleIdentity(2, 1), 'label-test', { frames: faces });
  const mp4 = openMp4(file, 160, 160, 25);
  for (let f = 0; f < blank; f++) await mp4.write(Buffer.alloc(160 * 160 * 3, 90));
  for (let f = 0; f < faces; f++) await mp4.write(await renderScene([trackFrame(track, f)], 160, { format: 'rgb' }));
  await mp4.close();
  return file;
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'arbex-label-'));
  weights = await tinyModel(path.join(dir, 'model'));
  clip = await syntheticClip(path.join(dir, 'clip.mp4'), 3, 5);
});
after(() => rm(dir, { recursive: true, force: true }));

const quiet = async <T>(fn: () => Promise<T>): Promise<T> => {
  const err = console.error;
  console.error = () => undefined;
  try {
    return await fn();
  } finally {
    console.error = err;
  }
};

describe('arbex label', () => {
  const csv: Record<number, string[][]> = {};

  for (const batch of [1, 32]) {
    test(`CSV schema, batch size ${batch}`, async () => {
      const out = path.join(dir, `b${batch}.csv`);
      const code = await quiet(() => run([clip, '--out', out, '--weights', weights, '--batch-size', String(batch), '--smoothing', 'centred', '--window', '2']));
      assert.equal(code, 0);
      const [header, ...lines] = (await readFile(out, 'utf8')).trimEnd().split('\n');
      assert.equal(header, csvHeader(CLASSES));
      const cols = header!.split(',');
      assert.deepEqual(cols.slice(0, 9), ['frame', 'time_ms', 'track', 'x', 'y', 'w', 'h', 'label', 'confidence']);
      assert.ok(cols.includes('p_Neutral') && cols.includes('primary_Other') && cols.includes('smoothed_label') && cols.includes('s_Happiness'));
      const rows = lines.map((l) => splitCsvLine(l)!);
      for (const r of rows) assert.equal(r.length, csvWidth(CLASSES));
      assert.deepEqual(rows.map((r) => Number(r[0])), [0, 1, 2, 3, 4, 5, 6, 7], 'one row per frame (one face at most here)');
      assert.deepEqual(rows.map((r) => Number(r[1])), [0, 40, 80, 120, 160, 200, 240, 280]);
      for (const r of rows.slice(0, 3)) assert.ok(r.slice(2).every((c) => c === ''), 'a frame without a face has an empty track and nothing else');
      for (const r of rows.slice(3)) {
        assert.match(r[2]!, /^\d+$/);
        assert.ok(CLASSES.includes(r[7]!) && CLASSES.includes(r[9 + 2 * CLASSES.length]!));
        for (const at of [9, 9 + CLASSES.length, 10 + 2 * CLASSES.length]) {
          const sum = r.slice(at, at + CLASSES.length).map(Number).reduce((a, b) => a + b, 0);
          assert.ok(Math.abs(sum - 1) < 1e-4, `distribution at column ${at} sums to ${sum}`);
        }
        const p = r.slice(9, 9 + CLASSES.length).map(Number);
        assert.equal(r[7], CLASSES[p.indexOf(Math.max(...p))], 'label = argmax of the corrected distribution');
      }
      csv[batch] = rows;
    });
  }

  test('output does not depend on --batch-size (to 1e-5)', () => {
    const [a, b] = [csv[1]!, csv[32]!];
    assert.equal(a.length, b.length);
    a.forEach((row, i) =>
      row.forEach((cell, j) => {
        const other = b[i]![j]!;
        if (/^-?\d/.test(cell)) assert.ok(Math.abs(Number(cell) - Number(other)) <= 1e-5, `row ${i} col ${j}: ${cell} vs ${other}`);
        else assert.equal(cell, other);
      }),
    );
  });

  test('a folder: one JSONL per video, FrameOutput per line', async () => {
    const folder = path.join(dir, 'folder');
    await mkdir(folder, { recursive: true });
    await syntheticClip(path.join(folder, 'a.mp4'), 1, 2);
    await syntheticClip(path.join(folder, 'b.mp4'), 2, 0);
    const out = path.join(dir, 'folder-out');
    assert.equal(await quiet(() => run([folder, '--out', out, '--format', 'jsonl', '--weights', weights])), 0);
    assert.deepEqual((await readdir(out)).sort(), ['a.labels.jsonl', 'b.labels.jsonl']);
    const a = (await readFile(path.join(out, 'a.labels.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as FrameOutput);
    assert.deepEqual(a.map((o) => [o.frame, o.faces]), [[0, 0], [1, 1], [2, 1]]);
    assert.deepEqual(a[0]!.results, []);
    const f = a[1]!.results[0]!;
    for (const key of ['track', 'box', 'label', 'confidence', 'corrected', 'primary', 'smoothed', 'smoothedLabel'] as const) assert.ok(key in f, key);
    assert.equal(f.corrected.length, 8);
    assert.equal(typeof a[1]!.ptsMs, 'number');
    const b = (await readFile(path.join(out, 'b.labels.jsonl'), 'utf8')).trim().split('\n');
    assert.equal(b.length, 2);
  });

  test('a failing run leaves no file under the final name and no temporary file', async () => {
    const engine: Pick<Engine, 'classes' | 'labelVideo'> = {
      classes: CLASSES,
      async *labelVideo() {
        yield { stream: 's', frame: 0, ptsMs: 0, faces: 0, results: [] };
        throw new Error('decoder died');
      },
    };
    const outDir = path.join(dir, 'failing');
    await assert.rejects(labelToFile(engine, 'x.mp4', path.join(outDir, 'x.csv'), { format: 'csv' }), /decoder died/);
    assert.deepEqual(await readdir(outDir), []);
  });

  test('SIGINT stops labelling, exits 130 and leaves no output', async () => {
    const long = await syntheticClip(path.join(dir, 'long.mp4'), 0, 30);
    const out = path.join(dir, 'sigint', 'long.csv');
    const script = `import('./src/cli/label.ts').then((m) => m.run(${JSON.stringify([long, '--out', out, '--weights', weights])})).then((c) => { process.exitCode = c; })`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // The first progress line means frames are being labelled and the output file is open.
      if (!sent && /long\.mp4 \d+(\/\d+)? frames/.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.ok(sent, stderr);
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted; no partial output was kept/);
    assert.deepEqual(await readdir(path.dirname(out)).catch(() => []), []);
  });
});
