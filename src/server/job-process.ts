/**
 * Runs each labelling job in its own Node process, so that decoding, face detection and the
 * model never run on the server's event loop: the API and the WebSocket keep answering while a
 * job runs, and a job that crashes (a decoder fault, running out of memory) fails alone.
 *
 * The process imports `module` and calls its `createJobEngine(spec)` (like the worker pool's
 * `createWorkerModel`), labels one job with `labelJob`, reports progress over IPC and exits.
 * It exits too as soon as its parent is gone (IPC disconnect), even after `kill -9` of the server,
 * taking its ffmpeg with it.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { JobRunner, JobTask } from './job-runner.js';
import { JobError } from './job-runner.js';

export interface ProcessRunnerOptions {
  /** Absolute path or file: URL of a module exporting `createJobEngine(spec): Promise<Engine>`. */
  module: string;
  /** Plain data passed to createJobEngine (JSON-serialisable). */
  spec: unknown;
  /** Time a job process gets to stop after a cancel before it is killed. */
  killGraceMs?: number;
}

/** Parent → child. */
export type ToChild = { type: 'run'; module: string; spec: unknown; task: JobTask } | { type: 'stop' };
/** Child → parent. */
export type FromChild =
  | { type: 'progress'; done: number; total?: number }
  | { type: 'done'; frames: number }
  | { type: 'failed'; error: string };

const CHILD = fileURLToPath(new URL('./job-child.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const DEFAULTS = { killGraceMs: 5000 };

/**
 * @example
 * const runner = createProcessRunner({ module: JOB_ENGINE_MODULE, spec: { weightsDir, workers: 1, ffmpegPath } });
 * const jobs = createJobs({ runner, ... });
 */
export function createProcessRunner(options: ProcessRunnerOptions): JobRunner {
  const { module, spec, killGraceMs } = { ...DEFAULTS, ...options };
  return (task, hooks) =>
    new Promise((resolve, reject) => {
      const child = fork(CHILD, [], { execArgv: ['--import', TSX], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      let result: FromChild | undefined;
      let killTimer: NodeJS.Timeout | undefined;
      const send = (message: ToChild) => {
        if (child.connected) child.send(message, (e) => e && child.kill('SIGKILL'));
      };
      const onAbort = () => {
        send({ type: 'stop' });
        killTimer ??= setTimeout(() => child.kill('SIGKILL'), killGraceMs);
      };
      hooks.signal.addEventListener('abort', onAbort);
      child.on('message', (message: FromChild) => {
        if (message.type === 'progress') hooks.onProgress(message.done, message.total);
        else result = message;
      });
      child.on('error', (e) => {
        result ??= { type: 'failed', error: `could not start the job process: ${e.message}` };
      });
      child.on('exit', (code, signal) => {
        clearTimeout(killTimer);
        hooks.signal.removeEventListener('abort', onAbort);
        if (result?.type === 'done') return resolve({ frames: result.frames });
        if (result?.type === 'failed') return reject(new JobError(result.error));
        reject(new JobError(`the job process ended without a result (${signal ?? `exit code ${code}`})`));
      });
      send({ type: 'run', module, spec, task });
      if (hooks.signal.aborted) onAbort();
    });
}
