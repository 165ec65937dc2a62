/**
 * What a benchmark figure was measured on, attached to every JSON line so numbers from different
 * machines (or from a loaded one) are never compared blindly.
 */
import * as tf from '@tensorflow/tfjs';
import os from 'node:os';
import type { BackendInfo } from '../src/backends/index.js';

export interface Machine {
  cpu: string;
  cpus: number;
  memoryGiB: number;
  /** 1-minute load average when measured: other work on the machine slows every figure. */
  load1: number;
  node: string;
  platform: string;
  tfjs: string;
  backend: string;
  backendFeatures: string[];
}

/** Describes this machine and the tensor backend in use. */
export function describeMachine(backend: BackendInfo): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    load1: Math.round(os.loadavg()[0] * 100) / 100,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    tfjs: tf.version.tfjs,
    backend: backend.name,
    backendFeatures: backend.features,
  };
}
