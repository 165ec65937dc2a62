/**
 * The dashboard takes streams and jobs from the WebSocket: it reads no list from the API (it
 * only writes to it) and runs no timer other than the timeline's redraw.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const APP = readFileSync(path.resolve(import.meta.dirname, '../../web/app.js'), 'utf8');

test('the dashboard polls neither the streams nor the jobs', () => {
  const reads = APP.split('\n')
    .filter((line) => /\bapi\(/.test(line) && !/async function api/.test(line))
    .filter((line) => !/method: '(POST|DELETE)'/.test(line))
    .map((line) => /api\((['`][^'`]*['`])/.exec(line)![1]);
  // The classes once, the selected stream's picture, labels on a click; no list.
  assert.deepEqual(reads.sort(), ["'/api/info'", '`/api/jobs/${job.id}/labels.${kind}`', '`/api/streams/${encodeURIComponent(id)}/frame.jpg`']);
  assert.deepEqual([...APP.matchAll(/setInterval\(([^,]+),/g)].map((m) => m[1]), ['drawTimeline']);
  for (const type of ['stream', 'stream-removed', 'job', 'job-removed']) assert.ok(APP.includes(`msg.type === '${type}'`), type);
});
