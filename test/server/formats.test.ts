import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { tokenMatches, presentedToken } from '../../src/server/auth.js';
import { HttpError } from '../../src/server/errors.js';
import { csvField, csvHeader, csvRows, csvWidth, jsonlLine } from '../../src/pipeline/labels-format.js';
import { receiveMultipart } from '../../src/server/multipart.js';
import { metricName, renderMetrics } from '../../src/server/prometheus.js';
import type { FrameOutput } from '../../src/pipeline/types.js';

const CLASSES = ['Neutral', 'Happy,ish', 'Sad'];

const face = (track: number): FrameOutput['results'][number] => ({
  track,
  box: { x: 10.123, y: 20, w: 30.5, h: 40 },
  landmarks5: [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]],
  primary: [0.2, 0.3, 0.5],
  corrected: [0.1234567, 0.6765433, 0.2],
  confidence: 0.75,
  label: 'Happy,ish',
  smoothed: [1 / 3, 1 / 3, 1 / 3],
  smoothedLabel: 'Neutral',
});

describe('labels-format', () => {
  it('writes the documented header', () => {
    assert.equal(
      csvHeader(CLASSES),
      'frame,time_ms,track,x,y,w,h,label,confidence,p_Neutral,"p_Happy,ish",p_Sad,primary_Neutral,"primary_Happy,ish",primary_Sad,smoothed_label,s_Neutral,"s_Happy,ish",s_Sad',
    );
    assert.equal(csvWidth(CLASSES), 19);
  });

  it('writes one row per face with corrected, primary and smoothed distributions', () => {
    const rows = csvRows({ stream: 's', frame: 7, ptsMs: 280.0001, faces: 2, results: [face(3), face(4)] }, CLASSES);
    assert.equal(rows.length, 2);
    assert.equal(rows[0], '7,280,3,10.12,20,30.5,40,"Happy,ish",0.75,0.123457,0.676543,0.2,0.2,0.3,0.5,Neutral,0.333333,0.333333,0.333333');
    assert.equal(rows[1]!.split(',')[2], '4');
  });

  it('writes a row with an empty track for a frame without faces', () => {
    const [row, ...rest] = csvRows({ stream: 's', frame: 9, ptsMs: 360, faces: 0, results: [] }, CLASSES);
    assert.equal(rest.length, 0);
    assert.equal(row, '9,360' + ','.repeat(csvWidth(CLASSES) - 2));
    assert.equal(row!.split(',').length, csvWidth(CLASSES));
  });

  it('refuses distributions that do not match the classes', () => {
    assert.throws(() => csvRows({ stream: 's', frame: 0, ptsMs: 0, faces: 1, results: [{ ...face(1), primary: [1] }] }, CLASSES), /primary has 1 values but there are 3 classes/);
  });

  it('quotes only fields that need it', () => {
    assert.equal(csvField('plain'), 'plain');
    assert.equal(csvField('a "b"'), '"a ""b"""');
    assert.equal(csvField('x\ny'), '"x\ny"');
  });

  it('writes one JSON object per line', () => {
    const out: FrameOutput = { stream: 's', frame: 1, ptsMs: 40, faces: 1, results: [face(1)] };
    const line = jsonlLine(out);
    assert.ok(!line.includes('\n'));
    assert.deepEqual(JSON.parse(line), out);
  });
});

describe('prometheus and auth helpers', () => {
  it('renders HELP, TYPE and escaped labels', () => {
    const text = renderMetrics([{ name: 'a_total', help: 'A.', type: 'counter', samples: [{ labels: { s: 'x"y\\z\n' }, value: 3 }, { value: NaN }] }]);
    assert.equal(text, '# HELP a_total A.\n# TYPE a_total counter\na_total{s="x\\"y\\\\z\\n"} 3\na_total NaN\n');
    assert.equal(metricName('engine.batch-size mean'), 'engine_batch_size_mean');
    assert.equal(metricName('9lives'), '_9lives');
  });

  it('compares tokens exactly', () => {
    assert.ok(tokenMatches('abc', 'abc'));
    for (const given of ['abd', 'ab', 'abcd', '', undefined, null]) assert.ok(!tokenMatches(given, 'abc'));
    assert.equal(presentedToken('Bearer  t1 ', new URL('http://h/?token=t2')), 't1');
    assert.equal(presentedToken(undefined, new URL('http://h/?token=t2')), 't2');
    assert.equal(presentedToken('Basic x', new URL('http://h/')), undefined);
  });
});

describe('multipart upload parser', () => {
  const boundary = '----arbexTestBoundary';
  const type = `multipart/form-data; boundary=${boundary}`;
  // File bytes that contain near-misses of the delimiter.
  const file = Buffer.concat([Buffer.from(`\r\n--${boundary.slice(0, 10)}x\r\n-`), Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256)), Buffer.from('\r\n--')]);
  const body = Buffer.concat([
    Buffer.from(`preamble\r\n--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nmy clip\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"\r\nContent-Type: video/mp4\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);

  async function* chunks(buf: Buffer, size: number) {
    for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
  }

  const dir = mkdtempSync(path.join(os.tmpdir(), 'arbex-multipart-'));

  it('writes the file part exactly, whatever the chunking', async () => {
    for (const size of [1, 2, 3, 7, 16, 41, 64, 100, 1000, body.length]) {
      const dest = path.join(dir, `f${size}`);
      const r = await receiveMultipart(chunks(body, size), type, { dest, maxBytes: 10_000 });
      assert.equal(r.filename, 'clip.mp4');
      assert.equal(r.bytes, file.length);
      assert.deepEqual(r.fields, { name: 'my clip' });
      assert.ok(readFileSync(dest).equals(file), `chunk size ${size}`);
    }
  });

  it('refuses malformed bodies and cleans up', async () => {
    const cases: [Buffer, string | undefined, number][] = [
      [body.subarray(0, body.length - 30), type, 400], // truncated
      [body, 'application/octet-stream', 415],
      [body, 'multipart/form-data', 400], // no boundary
      [Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--${boundary}--`), type, 400], // no file
      [Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="video"; filename="a"\r\n\r\n1\r\n--${boundary}--`), type, 400], // wrong field
      [Buffer.concat([body.subarray(0, body.length - 4), Buffer.from(`\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n\r\n2\r\n--${boundary}--`)]), type, 400], // two files
      [body, type, 413],
    ];
    for (const [i, [buf, ct, status]] of cases.entries()) {
      const dest = path.join(dir, `bad${i}`);
      await assert.rejects(
        receiveMultipart(chunks(buf, 50), ct, { dest, maxBytes: status === 413 ? 200 : 10_000 }),
        (e: unknown) => e instanceof HttpError && e.status === status,
        `case ${i}`,
      );
      assert.ok(!existsSync(dest), `case ${i} leaves no file`);
    }
    await rm(dir, { recursive: true, force: true });
  });
});
