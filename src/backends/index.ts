/**
 * The one module that decides which engine runs tensor math. Nothing else imports a tfjs backend.
 *
 * Order of preference: tfjs-node-gpu, tfjs-node (both register the "tensorflow" backend; they are
 * optionalDependencies whose install downloads libtensorflow, so they are often absent), wasm with
 * SIMD, then the pure-JS cpu backend (about 30x slower than wasm for convolutions).
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { registerWasmKernels } from './wasm-kernels.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  name: BackendName;
  /** npm package that provides the backend. */
  module: string;
  /** Extra facts, e.g. "simd" for wasm. */
  features: string[];
  /** Why each better backend was not used. */
  skipped: string[];
}

export interface InitOptions {
  /** Where the one-line choice report goes (default: stderr); false silences it. */
  log?: ((line: string) => void) | false;
}

interface Candidate {
  name: BackendName;
  module: string;
  /** Loads the package and makes its backend current; returns features worth reporting. */
  start: () => Promise<string[]>;
}

async function startTensorflow(module: string): Promise<string[]> {
  // A variable specifier keeps TypeScript from resolving a package that is usually not installed.
  const specifier: string = module;
  await import(specifier);
  if (!(await tf.setBackend('tensorflow'))) throw new Error('backend failed to initialise');
  // tfjs-node-gpu quietly runs on the CPU when CUDA finds no device; say which one it got.
  if (!module.endsWith('-gpu')) return [];
  return (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice ? ['gpu'] : ['no gpu device'];
}

async function startWasm(): Promise<string[]> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const dir = path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  wasm.setWasmPaths(path.join(dir, 'dist') + path.sep);
  // The multi-threaded wasm build cannot start its workers in Node (ERR_WORKER_PATH: they come
  // from blob: URLs), and tfjs already disables it there. Parallelism comes from worker_threads
  // instead, one single-threaded wasm backend per worker.
  registerWasmKernels();
  if (!(await tf.setBackend('wasm'))) throw new Error('backend failed to initialise');
  return (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) ? ['simd'] : ['no simd'];
}

async function startCpu(): Promise<string[]> {
  if (!(await tf.setBackend('cpu'))) throw new Error('backend failed to initialise');
  return [];
}

const candidates: Candidate[] = [
  { name: 'tensorflow', module: '@tensorflow/tfjs-node-gpu', start: () => startTensorflow('@tensorflow/tfjs-node-gpu') },
  { name: 'tensorflow', module: '@tensorflow/tfjs-node', start: () => startTensorflow('@tensorflow/tfjs-node') },
  { name: 'wasm', module: '@tensorflow/tfjs-backend-wasm', start: startWasm },
  { name: 'cpu', module: '@tensorflow/tfjs', start: startCpu },
];

function reason(e: unknown): string {
  const err = e as { code?: string; message?: string };
  if (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') return 'not installed';
  return String(err.message ?? e).split('\n')[0];
}

function describe(info: BackendInfo): string {
  const features = info.features.length ? ` [${info.features.join(', ')}]` : '';
  const skipped = info.skipped.length ? ` (skipped ${info.skipped.join('; ')})` : '';
  return `arbex: backend ${info.name}${features} from ${info.module}${skipped}`;
}

async function choose(force: BackendName | undefined, log: ((line: string) => void) | false): Promise<BackendInfo> {
  const skipped: string[] = [];
  for (const c of candidates.filter((c) => !force || c.name === force)) {
    try {
      const features = await c.start();
      await tf.ready();
      const info: BackendInfo = { name: c.name, module: c.module, features, skipped };
      if (log) log(describe(info));
      return info;
    } catch (e) {
      skipped.push(`${c.module.replace('@tensorflow/', '')}: ${reason(e)}`);
    }
  }
  const why = skipped.join('; ');
  throw new Error(force ? `tensor backend "${force}" is not available (${why})` : `no tensor backend could start (${why})`);
}

let chosen: Promise<BackendInfo> | undefined;

/**
 * Chooses and initialises the tensor backend, once per process (tfjs has one current backend).
 * `force` is the user's choice (settings.backend, from ARBEX_BACKEND); without it the best
 * available backend wins. Later calls return the same info; asking for a different backend after
 * the choice is made is an error, and so is forcing one that cannot start.
 *
 * @example
 * const info = await initBackend(readSettings().backend);
 * const quiet = await initBackend('wasm', { log: false }); // tests
 */
export async function initBackend(force?: BackendName, options: InitOptions = {}): Promise<BackendInfo> {
  const { log } = { log: (line: string) => process.stderr.write(line + '\n'), ...options };
  if (!chosen) {
    const attempt = choose(force, log);
    chosen = attempt;
    // A failed choice is forgotten so that a later call may ask for another backend.
    attempt.catch(() => {
      if (chosen === attempt) chosen = undefined;
    });
  }
  const info = await chosen;
  if (force && force !== info.name) {
    throw new Error(`tensor backend is already "${info.name}"; it cannot be switched to "${force}" in the same process`);
  }
  return info;
}
