/**
 * The layering of src/, read from the imports themselves: an import points down, never up or
 * sideways. From the bottom: ingest and backends; env.ts (the settings); model; pipeline; server
 * and eval; cluster (which runs the server's jobs and streams on other machines); cli. Inside one area anything goes, except import cycles through the model files.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cycleThrough, importGraph, type ImportEdge } from './imports.js';

const LAYERS: Record<string, number> = {
  ingest: 0,
  backends: 0,
  'env.ts': 1,
  model: 2,
  pipeline: 3,
  server: 4,
  eval: 4,
  cluster: 5,
  cli: 6,
};

/** The area of a file under src/: its first folder, or the file itself at the top. */
const area = (file: string) => file.split('/')[0]!;

function wrongArrows(edges: readonly ImportEdge[]): string[] {
  return edges
    .filter((e) => area(e.from) !== area(e.to))
    .filter((e) => {
      const from = LAYERS[area(e.from)];
      const to = LAYERS[area(e.to)];
      assert.ok(from !== undefined && to !== undefined, `${e.from} or ${e.to} lies in an area with no layer; add it to LAYERS`);
      return to >= from;
    })
    .map((e) => `${e.from}:${e.line} -> ${e.to} (${LAYERS[area(e.to)]! > LAYERS[area(e.from)]! ? 'up' : 'sideways'})`);
}

test('imports in src/ only point down the layers', () => {
  const edges = importGraph();
  assert.ok(edges.length > 300, `only ${edges.length} imports found: the parser missed some`);
  assert.deepEqual(wrongArrows(edges), []);
});

test('the layer check catches an upward and a sideways arrow', () => {
  const edges: ImportEdge[] = [
    { from: 'ingest/ingest.ts', to: 'pipeline/types.ts', line: 1, typeOnly: true },
    { from: 'eval/label.ts', to: 'server/labels-format.ts', line: 2, typeOnly: false },
    { from: 'pipeline/engine.ts', to: 'ingest/index.ts', line: 3, typeOnly: false },
  ];
  assert.deepEqual(wrongArrows(edges), ['ingest/ingest.ts:1 -> pipeline/types.ts (up)', 'eval/label.ts:2 -> server/labels-format.ts (sideways)']);
});

test('the ARBEx model and its worker do not import each other, even lazily', () => {
  const edges = importGraph();
  for (const file of ['model/arbex.ts', 'model/arbex-worker.ts']) {
    assert.ok(edges.some((e) => e.from === file), `${file} has no imports: moved?`);
    assert.equal(cycleThrough(edges, file)?.join(' -> '), undefined);
  }
  // The cycle finder sees one when there is one.
  const looped = [...edges, { from: 'model/arbex.ts', to: 'model/arbex-worker.ts', line: 1, typeOnly: false }];
  assert.deepEqual(cycleThrough(looped, 'model/arbex.ts'), ['model/arbex.ts', 'model/arbex-worker.ts', 'model/arbex.ts']);
});
