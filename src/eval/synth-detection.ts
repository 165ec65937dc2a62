/**
 * How often the real face detector (BlazeFace + FaceMesh confirmation, src/pipeline/detect) finds
 * the synthetic faces, per class. Synthetic data is only useful to the product if its faces go
 * through the same detection and alignment as real video.
 *
 * Run: node --import tsx src/eval/synth-detection.ts [perClass=50] [size=256] [seed=11] [identities=40] [images|videos]
 * (for videos, perClass is the length of each video and identities the number of videos)
 */
import { fileURLToPath } from 'node:url';
import { createFaceDetector, type DetectedFace, type FaceDetector } from '../pipeline/detect/index.js';
import { CLASSES, type ClassName } from '../model/data/synth/classes.js';
import { sampleIdentity } from '../model/data/synth/identity.js';
import { renderFace, type FaceParams } from '../model/data/synth/render.js';
import { DEFAULT_JITTER, sampleFaceParams, type JitterOptions } from '../model/data/synth/sample.js';
import { scriptTrack, trackFrame } from '../model/data/synth/video.js';

export interface DetectionRateOptions {
  seed: number;
  /** Images rendered per class. */
  perClass: number;
  /** Side of each square image in pixels. */
  size: number;
  /** Identities cycled through (image i of a class uses identity i mod identities). */
  identities: number;
  jitter: JitterOptions;
  /**
   * images: independent jittered stills (detector reset before each);
   * videos: frames of scripted single-person videos of `perClass` frames each, one per identity,
   * run in order with tracking like a live stream, each frame scored under its own label.
   */
  source: 'images' | 'videos';
  /** A detector to reuse; one is created (and disposed) when absent. */
  detector?: FaceDetector;
}

export interface ClassRate {
  found: number;
  total: number;
  rate: number;
  /** Mean FaceMesh face-presence score over the faces found. */
  meanScore: number;
}

export interface DetectionRateReport {
  perClass: Record<ClassName, ClassRate>;
  overall: ClassRate;
  /** Params of the faces that were missed, for looking at them. */
  misses: { label: ClassName; index: number; params: FaceParams }[];
}

const RATE_DEFAULTS: Omit<DetectionRateOptions, 'detector'> = { seed: 11, perClass: 50, size: 256, identities: 40, jitter: DEFAULT_JITTER, source: 'images' };

/**
 * A face counts as found when the detector reports one whose box centre lies within a quarter of
 * the image of where the head was drawn (so a detection on the shirt or hair does not count).
 */
function hit(faces: DetectedFace[], params: FaceParams, size: number): number | null {
  const ex = ((50 + params.pose.dx) / 100) * size;
  const ey = ((50 + params.pose.dy) / 100) * size;
  for (const f of faces) {
    if (Math.hypot(f.box.x + f.box.w / 2 - ex, f.box.y + f.box.h / 2 - ey) < size / 4) return f.score;
  }
  return null;
}

/**
 * Renders faces of every class (stills or video frames, see `source`) and runs the detector on them.
 * @example const r = await measureDetectionRate({ perClass: 20 }); console.log(r.perClass.Surprise.rate);
 */
export async function measureDetectionRate(options: Partial<DetectionRateOptions> = {}): Promise<DetectionRateReport> {
  const o = { ...RATE_DEFAULTS, ...options };
  // Videos run as the product runs a stream: the detector every 5th frame, the mesh tracking between.
  const detector = o.detector ?? (await createFaceDetector({ detectEvery: o.source === 'videos' ? 5 : 1, maxFaces: 3 }));
  const counts = CLASSES.map(() => ({ found: 0, total: 0, score: 0 }));
  const misses: DetectionRateReport['misses'] = [];
  const score = async (params: FaceParams, label: number, index: number) => {
    const data = await renderFace(params, o.size, { format: 'rgb' });
    const s = hit(await detector.detect({ index, ptsMs: index * 40, width: o.size, height: o.size, data }), params, o.size);
    counts[label].total++;
    if (s === null) misses.push({ label: CLASSES[label], index, params });
    else {
      counts[label].found++;
      counts[label].score += s;
    }
  };
  try {
    if (o.source === 'images') {
      for (let c = 0; c < CLASSES.length; c++) {
        for (let i = 0; i < o.perClass; i++) {
          detector.reset();
          await score(sampleFaceParams(o.seed, sampleIdentity(o.seed, i % o.identities), CLASSES[c], i, o.jitter), c, i);
        }
      }
    } else {
      for (let v = 0; v < o.identities; v++) {
        const track = scriptTrack(sampleIdentity(o.seed, v), `rate:${o.seed}`, { frames: o.perClass });
        detector.reset();
        for (let f = 0; f < o.perClass; f++) await score(trackFrame(track, f), track.labels[f], f);
      }
    }
  } finally {
    if (!o.detector) detector.dispose();
  }
  const rate = (n: { found: number; total: number; score: number }): ClassRate => ({ found: n.found, total: n.total, rate: n.total ? n.found / n.total : 0, meanScore: n.found ? n.score / n.found : 0 });
  const all = counts.reduce((a, n) => ({ found: a.found + n.found, total: a.total + n.total, score: a.score + n.score }), { found: 0, total: 0, score: 0 });
  return { perClass: Object.fromEntries(CLASSES.map((c, i) => [c, rate(counts[i])])) as Record<ClassName, ClassRate>, overall: rate(all), misses };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [perClass = '50', size = '256', seed = '11', identities = '40', source = 'images'] = process.argv.slice(2);
  if (source !== 'images' && source !== 'videos') throw new Error(`source must be images or videos (got ${source})`);
  const t0 = performance.now();
  const r = await measureDetectionRate({ perClass: Number(perClass), size: Number(size), seed: Number(seed), identities: Number(identities), source });
  for (const c of CLASSES) {
    const p = r.perClass[c];
    console.log(`${c.padEnd(10)} ${p.found}/${p.total} = ${(100 * p.rate).toFixed(1)} %  (mean mesh score ${p.meanScore.toFixed(3)})`);
  }
  console.log(`overall    ${r.overall.found}/${r.overall.total} = ${(100 * r.overall.rate).toFixed(1)} %  in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  for (const m of r.misses.slice(0, 20)) {
    console.log(`missed ${m.label} #${m.index} ${m.params.identity.id} hair=${m.params.identity.hairStyle} glasses=${m.params.identity.glasses} pose=${JSON.stringify(m.params.pose, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 100) / 100 : v))}`);
  }
}
