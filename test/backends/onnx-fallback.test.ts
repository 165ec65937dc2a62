/** Without a loadable onnxruntime-node, the model runs on tfjs and one log line says why; forcing onnx then fails. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', '--import', fixture('no-onnx.mjs'), fixture('load-fer.ts'), ...args], { encoding: 'utf8', timeout: 120_000 });

test('onnxruntime-node missing: falls back to tfjs with one log line', () => {
  const r = run();
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout.trim()).engine, 'tfjs');
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('arbex: engine'));
  assert.deepEqual(lines, ['arbex: engine tfjs (skipped onnxruntime-node: not installed)']);
});

test('onnxruntime-node missing and ARBEX_ENGINE=onnx: the load fails and says why', () => {
  const r = run('force');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /inference engine "onnx" is not available \(onnxruntime-node: not installed\)/);
});
