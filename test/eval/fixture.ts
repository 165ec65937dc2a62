/** Shared fixtures of the evaluation tests: a small Aff-Wild2-style data set and test models. */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../../src/backends/index.js';
import { run } from '../../src/cli/eval.js';
import { createArbex, saveArbex, validateArbexConfig } from '../../src/model/arbex.js';
import { ABAW_CLASSES } from '../../src/model/data/classes.js';
import { generateDataset } from '../../src/model/data/synth/index.js';
import { createParams } from '../../src/model/nn/params.js';
import type { FaceModel, FacePrediction } from '../../src/model/types.js';

/**
 * Two synthetic videos of 16 frames at 25 fps: `synth_000` (one person) and `synth_001` (two:
 * annotations `synth_001_left` / `synth_001_right`), with annotations and aligned crops.
 * Seed 1 is the seed that gives one of each.
 */
export async function abawFixture(dir: string): Promise<{ root: string; annotations: string; crops: string; videos: string }> {
  const summary = await generateDataset({ out: dir, identities: 4, imagesPerClass: 0, videos: 2, framesPerVideo: 16, videoSize: 160, pairFraction: 0.5, seed: 1 });
  const tracks = summary.videos.flatMap((v) => v.tracks.map((t) => t.name));
  if (tracks.join() !== 'synth_000,synth_001_left,synth_001_right') throw new Error(`fixture layout changed: ${tracks.join()}`);
  const root = path.join(dir, 'affwild2');
  return { root, annotations: path.join(root, 'annotations'), crops: path.join(root, 'cropped_aligned'), videos: path.join(root, 'videos') };
}

/** A tiny-preset ARBEx model with random weights, saved as a model directory. */
export async function tinyModel(dir: string, seed = 3): Promise<string> {
  await initBackend('wasm', { log: false });
  await mkdir(dir, { recursive: true });
  const config = validateArbexConfig({ classes: [...ABAW_CLASSES], extractor: 'tiny', head: { hidden: [16], anchorsPerClass: 3, attention: { tokens: 4, heads: 2 } } });
  const model = createArbex(createParams(seed), config, { seed });
  await saveArbex(dir, model);
  model.dispose();
  return dir;
}

/**
 * A model that sees colour only: the distribution is a softmax over distances from the mean
 * colour of the crop's central square to eight fixed colours. Random network weights are blind
 * to who is who; this one tells the synthetic identities apart (skin and hair colours) whether the
 * crop comes from ABAW-style alignment or from the pipeline, which makes crop/video agreement a
 * test of frame and track correspondence.
 */
export function paletteModel(inputSize = 48): FaceModel {
  const protos = Array.from({ length: 8 }, (_, k) => [((k >> 0) & 1) * 255, ((k >> 1) & 1) * 255, ((k >> 2) & 1) * 255]);
  const classes = [...ABAW_CLASSES];
  const predictOne = (crop: Uint8Array): FacePrediction => {
    const lo = Math.floor(inputSize / 4);
    const hi = inputSize - lo;
    const mean = [0, 0, 0];
    for (let y = lo; y < hi; y++) for (let x = lo; x < hi; x++) for (let c = 0; c < 3; c++) mean[c]! += crop[(y * inputSize + x) * 3 + c]!;
    const n = (hi - lo) ** 2;
    const logits = protos.map((p) => -Math.hypot(...p.map((v, c) => v - mean[c]! / n)) / 8);
    const top = Math.max(...logits);
    const e = logits.map((z) => Math.exp(z - top));
    const s = e.reduce((a, b) => a + b, 0);
    const dist = e.map((v) => v / s);
    const labelIndex = dist.indexOf(Math.max(...dist));
    const entropy = -dist.reduce((a, p) => a + (p > 0 ? p * Math.log(p) : 0), 0) / Math.log(8);
    return { primary: dist, corrected: dist, primaryConfidence: 1 - entropy, confidence: 1 - entropy, anchorSimilarity: [], labelIndex, label: classes[labelIndex]! };
  };
  return { classes, inputSize, predict: async (crops) => crops.map(predictOne), dispose: () => undefined };
}

/** Runs `arbex eval` in process with its console output (stdout and stderr) captured. */
export async function evalCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    return { code: await run(args), out: out.join('\n'), err: err.join('\n') };
  } finally {
    [console.log, console.error] = [log, error];
  }
}
