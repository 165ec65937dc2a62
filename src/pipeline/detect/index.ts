/**
 * Face detection with landmark tracking: BlazeFace finds faces, FaceMesh confirms each one (its
 * face-presence score rejects BlazeFace's false positives) and gives 468 points, from which come
 * the five alignment points and the next frame's crop. Between detector runs a face is followed by
 * re-running the mesh on a crop around its previous mesh, as MediaPipe's face-mesh graph does.
 *
 * @example
 * const detector = await createFaceDetector({ maxFaces: 4, detectEvery: 5 });
 * for await (const frame of frames) {
 *   const faces = await detector.detect(frame); // [{ box, score, landmarks5, mesh, ... }]
 * }
 * detector.dispose();
 */
import type { Box, Frame, Landmarks5 } from '../types.js';
import { blazefaceAnchors, blazefaceDetections, blazefaceInput, type Detection } from './blazeface.js';
import { boundsOf, boxIou } from './boxes.js';
import { defaultModelDir, loadDetectorGraphs, type DetectorGraphs } from './graphs.js';
import { timed, type StageListener } from '../profile.js';
import { landmarks5FromMesh, meshInput, meshResults, roiFromDetection, roiFromMesh, type MeshPoint, type MeshResult, type Roi } from './mesh.js';

export type { Detection } from './blazeface.js';
export type { MeshPoint, Roi } from './mesh.js';
export { loadDetectorGraphs, startDetectorWorkers, type DetectorGraphs, type DetectorWorkersOptions } from './graphs.js';

export interface DetectedFace {
  /** Axis-aligned bounds of the mesh, clipped to the frame (pixels). */
  box: Box;
  /** FaceMesh face-presence probability. */
  score: number;
  /** BlazeFace score when the detector ran on this frame and found this face; null otherwise. */
  detectorScore: number | null;
  /** Left eye, right eye (image terms), nose tip, left and right mouth corner, frame pixels. */
  landmarks5: Landmarks5;
  /** The full 468-point mesh in frame pixels (z: relative depth in the same scale). */
  mesh: MeshPoint[];
}

export interface FaceDetectorOptions {
  /** Minimum BlazeFace score for a candidate. */
  minScore: number;
  /** Most faces reported per frame (highest mesh score first). */
  maxFaces: number;
  /**
   * Run BlazeFace every N frames while faces are being tracked (1: every frame). It also runs on
   * any frame where nothing is tracked or a tracked face's mesh score fell below meshMinScore.
   */
  detectEvery: number;
  /** Minimum FaceMesh face-presence probability for a face to be reported and kept tracked. */
  meshMinScore: number;
  /** IoU above which two boxes are the same face (detector NMS and merging tracked faces). */
  iouThreshold: number;
  /** Folder holding blazeface.json and facemesh.json; defaults to @vladmandic/human's models/. */
  modelDir: string;
  /** Benchmarks: receives the time of each BlazeFace and FaceMesh run (../profile.ts). */
  onStage?: StageListener;
}

export interface FaceDetector {
  /**
   * Faces in this frame. Give one detector the frames of one stream, in order: the crops found in
   * one frame are where it looks in the next. Overlapping calls are queued.
   */
  detect(frame: Frame): Promise<DetectedFace[]>;
  /** Forgets tracked faces (e.g. on a seek or a new stream), so the next frame runs the detector. */
  reset(): void;
  dispose(): void;
}

/**
 * A detector with its own tracking state. Without `graphs` it loads BlazeFace and FaceMesh (from
 * `modelDir`, no network) on this thread's tfjs backend and frees them on dispose(); with `graphs`
 * (loadDetectorGraphs, or startDetectorWorkers to run them in worker threads) it runs those,
 * which may serve many detectors, and leaves them to their owner (`modelDir` is then theirs).
 * Both ways give the same faces: only the thread that runs the graphs differs.
 */
export async function createFaceDetector(options: Partial<FaceDetectorOptions> = {}, graphs?: DetectorGraphs): Promise<FaceDetector> {
  const opts: FaceDetectorOptions = { minScore: 0.5, maxFaces: 5, detectEvery: 5, meshMinScore: 0.5, iouThreshold: 0.3, modelDir: defaultModelDir(), ...options };
  if (!(opts.detectEvery >= 1)) throw new Error(`detectEvery must be >= 1 (got ${opts.detectEvery})`);
  const own = graphs ? undefined : await loadDetectorGraphs(opts.modelDir);
  const run = (graphs ?? own)!;
  const anchors = blazefaceAnchors();
  let tracked: Roi[] = [];
  let sinceDetection = Infinity;

  async function runMesh(frame: Frame, rois: Roi[]): Promise<MeshResult[]> {
    if (rois.length === 0) return [];
    const { pixels, maps } = meshInput(frame, rois);
    return meshResults(await run.mesh(pixels, rois.length), rois, maps);
  }

  async function runBlazeface(frame: Frame): Promise<Detection[]> {
    const { pixels, toFrame } = blazefaceInput(frame);
    return blazefaceDetections(await run.blazeface(pixels), anchors, toFrame, opts);
  }

  async function meshFaces(frame: Frame, rois: Roi[], detections: (Detection | null)[]): Promise<DetectedFace[]> {
    const results = await timed(opts.onStage, 'mesh', () => runMesh(frame, rois));
    const faces: DetectedFace[] = [];
    results.forEach((r, i) => {
      if (r.score < opts.meshMinScore) return;
      faces.push({
        box: boundsOf(r.mesh, frame.width, frame.height),
        score: r.score,
        detectorScore: detections[i]?.score ?? null,
        landmarks5: landmarks5FromMesh(r.mesh),
        mesh: r.mesh,
      });
    });
    return faces;
  }

  async function detect(frame: Frame): Promise<DetectedFace[]> {
    const followed = await meshFaces(frame, tracked, tracked.map(() => null));
    const lost = followed.length < tracked.length;
    let found: DetectedFace[] = [];
    if (lost || followed.length === 0 || sinceDetection + 1 >= opts.detectEvery) {
      sinceDetection = 0;
      const dets = await timed(opts.onStage, 'blazeface', () => runBlazeface(frame));
      const fresh: Detection[] = [];
      for (const d of dets) {
        // Faces already followed by their mesh need no second mesh run; they take the score.
        const same = followed.find((f) => boxIou(f.box, d.box) > opts.iouThreshold);
        if (!same) fresh.push(d);
        else same.detectorScore = Math.max(same.detectorScore ?? 0, d.score);
      }
      found = await meshFaces(frame, fresh.map(roiFromDetection), fresh);
    } else {
      sinceDetection++;
    }
    // Two crops can converge on one face (a detection beside a drifting track): keep the surer one.
    const faces: DetectedFace[] = [];
    for (const f of [...followed, ...found].sort((a, b) => b.score - a.score)) {
      if (faces.length < opts.maxFaces && faces.every((g) => boxIou(g.box, f.box) <= opts.iouThreshold)) faces.push(f);
    }
    tracked = faces.map((f) => roiFromMesh(f.mesh));
    return faces;
  }

  // Each call builds on the previous frame's state, so overlapping calls run one after another.
  let queue: Promise<unknown> = Promise.resolve();
  return {
    detect(frame) {
      const result = queue.then(() => detect(frame));
      queue = result.catch(() => undefined);
      return result;
    },
    reset() {
      tracked = [];
      sinceDetection = Infinity;
    },
    dispose() {
      void own?.dispose();
    },
  };
}
