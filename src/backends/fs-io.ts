/**
 * Reading tfjs model artifacts (model.json + weight shards) from disk without tfjs-node,
 * which has no file:// handler in plain tfjs.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** Reads a tfjs model.json and its weight shards into memory as ModelArtifacts. */
export async function readArtifacts(jsonPath: string): Promise<tf.io.ModelArtifacts> {
  const json = JSON.parse(await readFile(jsonPath, 'utf8')) as tf.io.ModelJSON;
  const dir = path.dirname(jsonPath);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const shards: Buffer[] = [];
  for (const group of json.weightsManifest ?? []) {
    specs.push(...group.weights);
    for (const p of group.paths) shards.push(await readFile(path.join(dir, p)));
  }
  const all = Buffer.concat(shards);
  return {
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    userDefinedMetadata: json.userDefinedMetadata,
    weightSpecs: specs,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
  };
}

/** An IOHandler for tf.loadGraphModel / tf.loadLayersModel that reads from the file system. */
export function fileHandler(jsonPath: string): tf.io.IOHandler {
  return { load: () => readArtifacts(jsonPath) };
}
