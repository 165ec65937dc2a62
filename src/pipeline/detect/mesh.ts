/**
 * FaceMesh (MediaPipe's 468-point landmark model, @vladmandic/human/models/facemesh.json) on
 * rotated square crops ("regions of interest"), as MediaPipe runs it: the crop is upright along
 * the eye line and 1.5x the face, and the model's face-flag output (a probability) says whether
 * the crop really holds a face.
 */
import * as tf from '@tensorflow/tfjs';
import { applyAffine, warpAffine, type Affine, type RgbImage } from '../align/index.js';
import type { Landmarks5 } from '../types.js';
import type { Detection } from './blazeface.js';

export const MESH_SIZE = 192;
export const MESH_POINTS = 468;
/** Crop side relative to the face, as in MediaPipe's face-landmark ROI. */
const ROI_SCALE = 1.5;

/** A square crop of side `size` centred at (cx, cy), its x axis rotated by `angle` (radians, image y down). */
export interface Roi {
  cx: number;
  cy: number;
  size: number;
  angle: number;
}

export type MeshPoint = [number, number, number];

export interface MeshResult {
  /** Face-presence probability from the model's face-flag head. */
  score: number;
  /** 468 points (x, y in frame pixels; z in the same pixel scale, relative depth). */
  mesh: MeshPoint[];
}

/** Maps crop pixel indices (0..n-1) to frame pixels. */
export function roiToFrame(roi: Roi, n = MESH_SIZE): Affine {
  const k = roi.size / n;
  const c = Math.cos(roi.angle), s = Math.sin(roi.angle);
  // Index u sits at (u + 0.5) / n of the crop; the crop's centre is its 0.5 point.
  const o = 0.5 / n - 0.5;
  return [c * k, -s * k, roi.cx + roi.size * (c * o - s * o), s * k, c * k, roi.cy + roi.size * (s * o + c * o)];
}

/** ROI from a BlazeFace detection: rotation from the two eyes, 1.5x the longer box side. */
export function roiFromDetection(d: Detection): Roi {
  const [re, le] = d.keypoints;
  return {
    cx: d.box.x + d.box.w / 2,
    cy: d.box.y + d.box.h / 2,
    size: Math.max(d.box.w, d.box.h) * ROI_SCALE,
    angle: Math.atan2(le[1] - re[1], le[0] - re[0]),
  };
}

/**
 * ROI for the next frame from this frame's mesh: rotation from the outer eye corners (33, 263),
 * extent of the mesh measured along the rotated axes, 1.5x its longer side.
 */
export function roiFromMesh(mesh: readonly MeshPoint[]): Roi {
  const angle = Math.atan2(mesh[263][1] - mesh[33][1], mesh[263][0] - mesh[33][0]);
  const c = Math.cos(angle), s = Math.sin(angle);
  let u0 = Infinity, u1 = -Infinity, v0 = Infinity, v1 = -Infinity;
  for (const [x, y] of mesh) {
    const u = c * x + s * y, v = -s * x + c * y;
    if (u < u0) u0 = u;
    if (u > u1) u1 = u;
    if (v < v0) v0 = v;
    if (v > v1) v1 = v;
  }
  const um = (u0 + u1) / 2, vm = (v0 + v1) / 2;
  return { cx: c * um - s * vm, cy: s * um + c * vm, size: Math.max(u1 - u0, v1 - v0) * ROI_SCALE, angle };
}

const mean = (a: MeshPoint, b: MeshPoint): [number, number] => [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];

/**
 * The five ArcFace points from the mesh: eye centres (corners 33/133 and 263/362), nose tip (1),
 * mouth corners (61, 291). Mesh indices are anatomical (33 is the subject's right eye, which is on
 * the image's left in an unmirrored picture), so the order matches the template's left-to-right.
 */
export function landmarks5FromMesh(mesh: readonly MeshPoint[]): Landmarks5 {
  return [mean(mesh[33], mesh[133]), mean(mesh[263], mesh[362]), [mesh[1][0], mesh[1][1]], [mesh[61][0], mesh[61][1]], [mesh[291][0], mesh[291][1]]];
}

/** The mesh's input for the ROIs of one frame: n crops of 192x192 RGB floats (0..255), and each crop's map to the frame. */
export function meshInput(frame: RgbImage, rois: readonly Roi[]): { pixels: Float32Array; maps: Affine[] } {
  const area = MESH_SIZE * MESH_SIZE * 3;
  const pixels = new Float32Array(area * rois.length);
  const maps = rois.map((roi) => roiToFrame(roi));
  maps.forEach((m, i) => warpAffine(frame, m, MESH_SIZE, MESH_SIZE, pixels.subarray(i * area, (i + 1) * area)));
  return { pixels, maps };
}

/** The graph's raw outputs for n crops: n face-flag probabilities and n x 468 x 3 crop coordinates. */
export interface MeshRaw {
  flags: Float32Array;
  raw: Float32Array;
}

/**
 * Runs the graph on `count` crops of meshInput() as one batch (in this thread, or in a detector
 * worker: the same function either way); every tensor it creates is disposed.
 */
export async function executeMesh(model: tf.GraphModel, pixels: Float32Array, count: number): Promise<MeshRaw> {
  const input = tf.tidy(() => tf.tensor4d(pixels, [count, MESH_SIZE, MESH_SIZE, 3]).div(255));
  const outputs = model.execute(input) as tf.Tensor[];
  input.dispose();
  try {
    const flagT = outputs.find((t) => t.shape[1] === 1);
    const meshT = outputs.find((t) => t.shape[1] === MESH_POINTS * 3);
    if (!flagT || !meshT) throw new Error('FaceMesh: face-flag or mesh output missing');
    const [flags, raw] = await Promise.all([flagT.data(), meshT.data()]);
    return { flags: flags as Float32Array, raw: raw as Float32Array };
  } finally {
    tf.dispose(outputs);
  }
}

/** The graph's raw outputs in frame pixels. */
export function meshResults(out: MeshRaw, rois: readonly Roi[], maps: readonly Affine[]): MeshResult[] {
  const { flags, raw } = out;
  return maps.map((m, i) => {
    const z = rois[i].size / MESH_SIZE;
    const mesh: MeshPoint[] = [];
    for (let p = 0; p < MESH_POINTS; p++) {
      const q = (i * MESH_POINTS + p) * 3;
      // The mesh is in continuous crop coordinates; index space is half a pixel behind.
      const [x, y] = applyAffine(m, raw[q] - 0.5, raw[q + 1] - 0.5);
      mesh.push([x, y, raw[q + 2] * z]);
    }
    return { score: flags[i], mesh };
  });
}

/** Runs the mesh on all ROIs of one frame as one batch; every tensor it creates is disposed. */
export async function runMesh(model: tf.GraphModel, frame: RgbImage, rois: readonly Roi[]): Promise<MeshResult[]> {
  if (rois.length === 0) return [];
  const { pixels, maps } = meshInput(frame, rois);
  return meshResults(await executeMesh(model, pixels, rois.length), rois, maps);
}
