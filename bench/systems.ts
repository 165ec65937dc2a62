/**
 * The three expression classifiers the accuracy bench compares, each with its own decoding and
 * preprocessing, behind one interface: image files in, one distribution per image out.
 *
 *   arbex     the project's model directory through loadFaceModel, as the product loads it; each
 *             image is a crop, decoded and resized as training decodes images (decodeRgb).
 *   face-api  @vladmandic/face-api's FaceExpressionNet (model/face_expression_model*), rebuilt from
 *             its sources: src/faceFeatureExtractor (four dense blocks of separable convolutions,
 *             7x7 average pool), src/faceProcessor (one fully connected layer), softmax.
 *             Input as NetInput.toBatchTensor(112, true) makes it from a tensor: RGB 0..255,
 *             zero-padded to a centred square, resizeBilinear to 112 (no align-corners, no
 *             half-pixel centres), minus the mean RGB (122.782, 117.001, 104.298), divided by 255.
 *   human     @vladmandic/human's emotion model (models/emotion.json, oarriaga's FER2013 CNN), as
 *             src/gear/emotion.ts feeds it a face tensor: RGB in 0..1, resizeBilinear to 64x64
 *             (no align-corners), grey = 0.2989 R + 0.5870 G + 0.1140 B, then (grey - 0.5) * 2.
 *
 * Model files are read from node_modules with the file system (no fetch, no network).
 *
 * With detection (loadDetectSystem), each system finds the face itself in a photo of any size,
 * as its package does, and classifies the largest face it finds:
 *   arbex     `arbex eval --images` without --crops: BlazeFace + FaceMesh (src/pipeline/detect,
 *             detector on every image), alignment, the model (src/eval/images.ts detectCrop)
 *   face-api  TinyFaceDetector + 68 landmarks + expressions (peer-pipelines.ts)
 *   human     BlazeFace + mesh + emotion, caching off, up to 5 faces (peer-pipelines.ts)
 * Every system gets the same frame: the photo with a black border of DETECT_BORDER x its longer
 * side on every side, and, when it finds no face there, the photo as it is: the way
 * src/eval/images.ts lets BlazeFace find faces that fill the image (FER2013's crops).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { readSettings, ROOT } from '../src/env.js';
import { loadFaceModel } from '../src/model/face-model.js';
import { ABAW_CLASSES, classIndexer } from '../src/model/data/classes.js';
import { decodeRgb } from '../src/model/data/dataset.js';
import { fileHandler } from '../src/backends/fs-io.js';
import { decodeFrame, detectCrop } from '../src/eval/images.js';
import { createFaceDetector } from '../src/pipeline/detect/index.js';
import { loadFaceApi, loadHuman } from './peer-pipelines.js';

export const SYSTEMS = ['arbex', 'face-api', 'human'] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** Every class name a system or a class folder may use, in the project's spelling. */
export const ALL_CLASSES = [...ABAW_CLASSES, 'Contempt'] as const;

/** Decoded pixels: RGB bytes, row-major HWC. */
export interface Pixels {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface System {
  name: SystemName;
  /** The package's version; for arbex the project's version. */
  version: string;
  /** arbex only: the model directory and the first 12 hex digits of its weights' SHA-256. */
  weights?: { dir: string; sha256: string };
  /** The system's output labels as the package spells them, in output order. */
  labels: readonly string[];
  /** The same labels as project class names (ALL_CLASSES). */
  classes: readonly string[];
  /** Reads an image file the way this system gets its input. */
  decode(file: string): Promise<Pixels>;
  /** One distribution per image, in `classes` order. */
  predict(images: Pixels[]): Promise<number[][]>;
  dispose(): void;
}

export interface SystemOptions {
  /** arbex's model directory (default: ARBEX_WEIGHTS, else weights/fer, as the product loads). */
  weights: string;
}

/** face-api's FACE_EXPRESSION_LABELS (src/faceExpressionNet/FaceExpressions.ts). */
const FACE_API_LABELS = ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgusted', 'surprised'];
const FACE_API_MEAN_RGB = [122.782, 117.001, 104.298];
const FACE_API_SIZE = 112;

/** human's annotations for a one-channel emotion model (src/gear/emotion.ts, "oarriaga and gear"). */
const HUMAN_LABELS = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];
const HUMAN_GREY = [0.2989, 0.587, 0.114];

const require = createRequire(import.meta.url);
/** A package's folder; both peers keep their node entry in <package>/dist/. */
const packageDir = (name: string) => path.resolve(path.dirname(require.resolve(name)), '..');
const packageVersion = async (dir: string) => (JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;

function toClasses(system: string, labels: readonly string[]): string[] {
  const indexOf = classIndexer(ALL_CLASSES);
  return labels.map((l) => {
    const i = indexOf(l);
    if (i < 0) throw new Error(`${system}: label "${l}" is none of ${ALL_CLASSES.join(', ')}`);
    return ALL_CLASSES[i]!;
  });
}

/** An image file as RGB bytes at its own size (grey images get three equal channels). */
async function decodeNative(file: string): Promise<Pixels> {
  const { data, info } = await sharp(file).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`${file}: decoded to ${info.channels} channels, expected 3`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

const toTensor = (p: Pixels) => tf.tensor4d(p.data, [1, p.height, p.width, 3], 'float32');

const rows = (t: tf.Tensor2D): number[][] => t.arraySync();

/** A tfjs weights manifest (a list of groups: paths + specs) and its shards, decoded. */
async function readWeightsManifest(file: string): Promise<tf.NamedTensorMap> {
  const manifest = JSON.parse(await readFile(file, 'utf8')) as tf.io.WeightsManifestConfig;
  const shards = await Promise.all(manifest.flatMap((g) => g.paths.map((p) => readFile(path.join(path.dirname(file), p)))));
  const all = Buffer.concat(shards);
  return tf.io.decodeWeights(
    all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
    manifest.flatMap((g) => g.weights),
  );
}

async function arbexSystem(options: SystemOptions): Promise<System> {
  const model = await loadFaceModel(options.weights, { workers: 0 });
  const weightsBin = await readFile(path.join(options.weights, 'weights.bin'));
  const side = model.inputSize;
  return {
    name: 'arbex',
    version: await packageVersion(ROOT),
    weights: { dir: path.relative(ROOT, options.weights) || '.', sha256: createHash('sha256').update(weightsBin).digest('hex').slice(0, 12) },
    labels: model.classes,
    classes: toClasses('arbex', model.classes),
    decode: async (file) => ({ data: await decodeRgb(file, side), width: side, height: side }),
    predict: async (images) => (await model.predict(images.map((p) => p.data))).map((f) => f.corrected),
    dispose: () => model.dispose(),
  };
}

/** face-api's zero padding to a centred square (src/ops/padToSquare.ts with isCenterImage). */
function padToSquare(x: tf.Tensor4D): tf.Tensor4D {
  const [, h, w] = x.shape;
  if (h === w) return x;
  const diff = Math.abs(h - w);
  const after = Math.round(diff * 0.5);
  const pads: [number, number] = [diff - after, after];
  return tf.pad(x, [[0, 0], h > w ? [0, 0] : pads, h > w ? pads : [0, 0], [0, 0]]);
}

async function faceApiSystem(): Promise<System> {
  const dir = packageDir('@vladmandic/face-api');
  const w = await readWeightsManifest(path.join(dir, 'model', 'face_expression_model-weights_manifest.json'));
  const separable = (x: tf.Tensor4D, name: string, stride: number) =>
    tf.add(tf.separableConv2d(x, w[`${name}/depthwise_filter`] as tf.Tensor4D, w[`${name}/pointwise_filter`] as tf.Tensor4D, stride, 'same'), w[`${name}/bias`]!) as tf.Tensor4D;
  // denseBlock4 of src/faceFeatureExtractor/denseBlock.ts; only the first block starts with a plain convolution.
  const denseBlock = (x: tf.Tensor4D, name: string, first: boolean) => {
    const out1 = tf.relu(first ? tf.add(tf.conv2d(x, w[`${name}/conv0/filters`] as tf.Tensor4D, 2, 'same'), w[`${name}/conv0/bias`]!) : separable(x, `${name}/conv0`, 2)) as tf.Tensor4D;
    const out2 = separable(out1, `${name}/conv1`, 1);
    const out3 = separable(tf.relu(tf.add(out1, out2)) as tf.Tensor4D, `${name}/conv2`, 1);
    const out4 = separable(tf.relu(tf.add(out1, tf.add(out2, out3))) as tf.Tensor4D, `${name}/conv3`, 1);
    return tf.relu(tf.add(out1, tf.add(out2, tf.add(out3, out4)))) as tf.Tensor4D;
  };
  const forward = (images: Pixels[]) =>
    tf.tidy(() => {
      const batch = tf.concat(
        images.map((p) => {
          const square = padToSquare(toTensor(p));
          return square.shape[1] === FACE_API_SIZE ? square : tf.image.resizeBilinear(square, [FACE_API_SIZE, FACE_API_SIZE], false, false);
        }),
      );
      let x = tf.div(tf.sub(batch, FACE_API_MEAN_RGB), 255) as tf.Tensor4D;
      ['dense0', 'dense1', 'dense2', 'dense3'].forEach((name, i) => (x = denseBlock(x, name, i === 0)));
      const features = tf.avgPool(x, [7, 7], [2, 2], 'valid').reshape([images.length, -1]);
      return tf.softmax(tf.add(tf.matMul(features, w['fc/weights'] as tf.Tensor2D), w['fc/bias']!)) as tf.Tensor2D;
    });
  return peerSystem('face-api', dir, FACE_API_LABELS, forward, () => tf.dispose(Object.values(w)));
}

/** A peer package's model as a System: its own decoding, one batched forward pass per call. */
async function peerSystem(name: SystemName, dir: string, labels: readonly string[], forward: (images: Pixels[]) => tf.Tensor2D, dispose: () => void): Promise<System> {
  return {
    name,
    version: await packageVersion(dir),
    labels,
    classes: toClasses(name, labels),
    decode: decodeNative,
    predict: async (images) => {
      const out = forward(images);
      const result = rows(out);
      out.dispose();
      return result;
    },
    dispose,
  };
}

async function humanSystem(): Promise<System> {
  const dir = packageDir('@vladmandic/human');
  const model = await tf.loadGraphModel(fileHandler(path.join(dir, 'models', 'emotion.json')));
  const [, height, width, channels] = model.inputs[0]!.shape!;
  // human switches to other labels and an RGB normalisation for a three-channel (AffectNet) model.
  if (channels !== 1) throw new Error(`human emotion model: expected a one-channel input, got ${channels}`);
  const forward = (images: Pixels[]) =>
    tf.tidy(() => {
      const faces = images.map((p) => tf.image.resizeBilinear(tf.div(toTensor(p), 255) as tf.Tensor4D, [height!, width!], false));
      const grey = tf.sum(tf.mul(tf.concat(faces), HUMAN_GREY), 3, true);
      return model.execute(tf.mul(tf.sub(grey, 0.5), 2)) as tf.Tensor2D;
    });
  return peerSystem('human', dir, HUMAN_LABELS, forward, () => model.dispose());
}

/**
 * Loads one of the compared systems on the current tfjs backend (call initBackend first).
 *
 * @example
 * const human = await loadSystem('human');
 * const [p] = await human.predict([await human.decode('face.jpg')]);
 * console.log(human.classes[p.indexOf(Math.max(...p))]); // e.g. 'Happiness'
 * human.dispose();
 */
export async function loadSystem(name: SystemName, options: Partial<SystemOptions> = {}): Promise<System> {
  const { weights } = { weights: readSettings().weightsDir, ...options };
  if (name === 'arbex') return arbexSystem({ weights });
  return name === 'face-api' ? faceApiSystem() : humanSystem();
}

/** Border added around a photo before detection, as src/eval/images.ts adds it (fraction of the longer side). */
export const DETECT_BORDER = 0.5;

/** A system that finds the face in a photo itself. */
export interface DetectSystem extends Pick<System, 'name' | 'version' | 'weights' | 'labels' | 'classes'> {
  /** The largest face's distribution in `classes` order; null when the system finds no face. */
  predictPhoto(file: string): Promise<number[] | null>;
  dispose(): void;
}

/**
 * Loads one of the compared systems with its own face detector (call initBackend first).
 *
 * @example
 * const human = await loadDetectSystem('human');
 * const p = await human.predictPhoto('family.jpg'); // null: no face found
 */
export async function loadDetectSystem(name: SystemName, options: Partial<SystemOptions & { border: number }> = {}): Promise<DetectSystem> {
  const { weights, border } = { weights: readSettings().weightsDir, border: DETECT_BORDER, ...options };
  const borders = border > 0 ? [border, 0] : [0];
  if (name === 'arbex') {
    const system = await arbexSystem({ weights });
    const model = await loadFaceModel(weights, { workers: 0 });
    const detector = await createFaceDetector({ detectEvery: 1 });
    system.dispose();
    return {
      ...system,
      async predictPhoto(file) {
        const crop = await detectCrop(file, model, detector, border);
        return crop === null ? null : (await model.predict([crop]))[0]!.corrected;
      },
      dispose() {
        detector.dispose();
        model.dispose();
      },
    };
  }
  const pipeline = name === 'human' ? await loadHuman('off', { maxFaces: 5 }) : await loadFaceApi();
  return {
    name,
    version: pipeline.version,
    labels: pipeline.labels,
    classes: toClasses(name, pipeline.labels),
    async predictPhoto(file) {
      for (const b of borders) {
        const faces = await pipeline.detect(await decodeFrame(file, b));
        if (faces.length === 0) continue;
        return faces.reduce((x, y) => (y.box.w * y.box.h > x.box.w * x.box.h ? y : x)).dist;
      }
      return null;
    },
    dispose: () => pipeline.dispose(),
  };
}
