/**
 * The two npm face pipelines arbex is compared with, each as its package runs it end to end on a
 * whole frame (its own detector, landmarks and expression model), behind one interface:
 * RGB frame in, the faces found with a box and an expression distribution out.
 *
 *   human     @vladmandic/human (dist/human.node-wasm.js): BlazeFace + FaceMesh + emotion, iris,
 *             description, body, hand, object, gesture off. `caching: 'off'` runs all three on
 *             every frame (cacheSensitivity 0, skipFrames 0, skipTime 0); `caching: 'default'`
 *             keeps human's own skipping (detector every 99 frames / 2.5 s, emotion every 99
 *             frames / 1.5 s, input-change cache 0.7). Emotion minConfidence 0 so that every
 *             class's score comes back (it only filters the output).
 *   face-api  @vladmandic/face-api (dist/face-api.node-wasm.js): TinyFaceDetector (its defaults:
 *             inputSize 416, scoreThreshold 0.5) + 68-point landmarks + expressions.
 *
 * Both packages share the process's tfjs (one @tensorflow/tfjs in node_modules) and backend;
 * models are read from the packages' own folders (a file:// load router for human, face-api's
 * loadFromDisk): no download.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readArtifacts } from '../src/backends/fs-io.js';
import type { Box } from '../src/pipeline/types.js';

const require = createRequire(import.meta.url);
/** A package's folder; both peers keep their node entry in <package>/dist/. */
export const packageDir = (name: string) => path.resolve(path.dirname(require.resolve(name)), '..');

/** RGB bytes, row-major HWC (a decoded frame or photo). */
export interface RgbFrame {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface PeerFace {
  box: Box;
  /** The expression distribution in the package's label order (PeerPipeline.labels). */
  dist: number[];
}

export interface PeerPipeline {
  name: string;
  version: string;
  /** The package's expression labels, in the order of PeerFace.dist. */
  labels: readonly string[];
  /** Every face the package reports in this frame. */
  detect(frame: RgbFrame): Promise<PeerFace[]>;
  /** Forgets what was cached or tracked from earlier frames (a new clip or photo). */
  reset(): Promise<void>;
  dispose(): void;
}

const HUMAN_LABELS = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];
const FACE_API_LABELS = ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgusted', 'surprised'];

let fileRouter = false;
/** tfjs without tfjs-node has no file:// loader; human asks tfjs for one. */
function registerFileRouter(): void {
  if (fileRouter) return;
  fileRouter = true;
  // A router answers null for URLs it does not handle (tfjs's own routers do the same).
  const router = (url: string | string[]) => {
    const u = Array.isArray(url) ? url[0] : url;
    return typeof u === 'string' && u.startsWith('file://') ? { load: () => readArtifacts(u.slice('file://'.length)) } : null;
  };
  tf.io.registerLoadRouter(router as Parameters<typeof tf.io.registerLoadRouter>[0]);
}

interface HumanResult {
  face: { box: [number, number, number, number]; emotion?: { score: number; emotion: string }[] }[];
}
interface HumanInstance {
  version: string;
  config: Record<string, unknown>;
  load(): Promise<void>;
  warmup(): Promise<unknown>;
  detect(input: tf.Tensor, config?: Record<string, unknown>): Promise<HumanResult>;
  reset(): void;
  validate(config: Record<string, unknown>): unknown[];
}

export type HumanCaching = 'off' | 'default';

/** The human configuration of a run: what is enabled is the same whatever the caching. */
export function humanConfig(caching: HumanCaching, maxFaces = 1): Record<string, unknown> {
  const dir = packageDir('@vladmandic/human');
  const off = caching === 'off' ? { skipFrames: 0, skipTime: 0 } : {};
  return {
    backend: 'wasm',
    wasmPath: path.join(packageDir('@tensorflow/tfjs-backend-wasm'), 'dist') + path.sep,
    modelBasePath: `file://${path.join(dir, 'models')}/`,
    cacheModels: false,
    debug: false,
    warmup: 'none',
    async: true,
    ...(caching === 'off' && { cacheSensitivity: 0 }),
    filter: { enabled: true },
    gesture: { enabled: false },
    body: { enabled: false },
    hand: { enabled: false },
    object: { enabled: false },
    segmentation: { enabled: false },
    face: {
      enabled: true,
      detector: { rotation: false, maxDetected: maxFaces, ...off },
      mesh: { enabled: true },
      attention: { enabled: false },
      iris: { enabled: false },
      emotion: { enabled: true, minConfidence: 0, ...off },
      description: { enabled: false },
      antispoof: { enabled: false },
      liveness: { enabled: false },
    },
  };
}

/**
 * @vladmandic/human's face pipeline.
 *
 * @example
 * const human = await loadHuman('off');
 * const faces = await human.detect(frame); // [{ box, dist: [angry, disgust, ...] }]
 */
export async function loadHuman(caching: HumanCaching, options: { maxFaces?: number } = {}): Promise<PeerPipeline> {
  registerFileRouter();
  const { Human } = require(path.join(packageDir('@vladmandic/human'), 'dist', 'human.node-wasm.js')) as { Human: new (c: Record<string, unknown>) => HumanInstance };
  const human = new Human(humanConfig(caching, options.maxFaces));
  await human.load();
  return {
    name: caching === 'off' ? 'human caching-off' : 'human default',
    version: human.version,
    labels: HUMAN_LABELS,
    async detect(frame) {
      const input = tf.tensor4d(frame.data, [1, frame.height, frame.width, 3], 'int32');
      try {
        const result = await human.detect(input);
        return result.face.map((f) => {
          const scores = new Map((f.emotion ?? []).map((e) => [e.emotion, e.score]));
          return { box: { x: f.box[0], y: f.box[1], w: f.box[2], h: f.box[3] }, dist: HUMAN_LABELS.map((l) => scores.get(l) ?? 0) };
        });
      } finally {
        input.dispose();
      }
    },
    async reset() {
      // reset() forgets the cached input and puts back human's defaults; the run's settings go on top again.
      human.reset();
      const problems = human.validate(humanConfig(caching, options.maxFaces));
      if (problems.length > 0) throw new Error(`human config: ${JSON.stringify(problems)}`);
    },
    dispose() {
      // human keeps its models for the process; nothing per run to free.
    },
  };
}

interface FaceApi {
  version: string;
  nets: Record<'tinyFaceDetector' | 'faceLandmark68Net' | 'faceExpressionNet', { loadFromDisk(dir: string): Promise<void>; dispose(): void }>;
  TinyFaceDetectorOptions: new (o?: { inputSize?: number; scoreThreshold?: number }) => unknown;
  detectAllFaces(input: tf.Tensor3D, options: unknown): {
    withFaceLandmarks(): { withFaceExpressions(): Promise<{ detection: { box: { x: number; y: number; width: number; height: number } }; expressions: Record<string, number> }[]> };
  };
}

/**
 * @vladmandic/face-api's pipeline: TinyFaceDetector + 68 landmarks + expressions.
 *
 * @example
 * const faceApi = await loadFaceApi();
 * const faces = await faceApi.detect(frame);
 */
export async function loadFaceApi(): Promise<PeerPipeline> {
  const dir = packageDir('@vladmandic/face-api');
  const faceapi = require(path.join(dir, 'dist', 'face-api.node-wasm.js')) as FaceApi;
  const models = path.join(dir, 'model');
  for (const net of ['tinyFaceDetector', 'faceLandmark68Net', 'faceExpressionNet'] as const) await faceapi.nets[net].loadFromDisk(models);
  const options = new faceapi.TinyFaceDetectorOptions();
  return {
    name: 'face-api',
    version: faceapi.version,
    labels: FACE_API_LABELS,
    async detect(frame) {
      const input = tf.tensor3d(frame.data, [frame.height, frame.width, 3], 'int32');
      try {
        const found = await faceapi.detectAllFaces(input, options).withFaceLandmarks().withFaceExpressions();
        return found.map(({ detection: { box }, expressions }) => ({
          box: { x: box.x, y: box.y, w: box.width, h: box.height },
          dist: FACE_API_LABELS.map((l) => expressions[l] ?? 0),
        }));
      } finally {
        input.dispose();
      }
    },
    async reset() {
      // face-api keeps no state between frames.
    },
    dispose() {
      // The nets are module-level singletons of face-api; they stay loaded for the process.
    },
  };
}
