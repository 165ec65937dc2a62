/**
 * The one module that decides which engine runs tensor math. Nothing else imports a tfjs backend.
 * (Minimal version; the backend issue extends it with tfjs-node(-gpu) and wasm gradient kernels.)
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../env.js';

export interface BackendInfo {
  name: string;
  /** Why each better backend was not used. */
  skipped: string[];
}

let current: Promise<BackendInfo> | undefined;

async function tryWasm(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const { createRequire } = await import('node:module');
  const path = await import('node:path');
  const dir = path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  wasm.setWasmPaths(path.join(dir, 'dist') + path.sep);
  if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend failed to initialise');
}

/** Chooses and initialises the backend once per process. */
export function initBackend(force?: BackendName): Promise<BackendInfo> {
  current ??= (async () => {
    const skipped: string[] = [];
    if (force !== 'cpu') {
      try {
        await tryWasm();
        await tf.ready();
        return { name: 'wasm', skipped };
      } catch (e) {
        skipped.push(`wasm: ${(e as Error).message}`);
      }
    }
    await tf.setBackend('cpu');
    await tf.ready();
    return { name: 'cpu', skipped };
  })();
  return current;
}
