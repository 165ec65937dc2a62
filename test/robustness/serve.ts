/**
 * `arbex serve` as a child process, for the robustness suite: the real command with the demo
 * weights, on a data folder and a media folder of the test's own, answering on a free port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../../src/env.js';
import { waitFor } from '../server/helpers.js';

export interface Serve {
  url: string;
  child: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
  /** Its resident memory in bytes (from /proc). */
  rss(): number;
  /** Resolves with the exit code (or signal) once it has exited. */
  exited: Promise<number | NodeJS.Signals>;
  /** Its job processes (children running job-child.ts). */
  jobProcesses(): number[];
}

export interface ServeOptions {
  dataDir: string;
  mediaDir: string;
  env?: Record<string, string>;
  args?: string[];
}

function childrenOf(pid: number, pattern: RegExp): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .filter((c) => {
        try {
          return pattern.test(readFileSync(`/proc/${c}/cmdline`, 'utf8'));
        } catch {
          return false;
        }
      });
  } catch {
    return [];
  }
}

/** Whether a process is still there (and not a zombie). */
export function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * @example
 * const s = await startServe({ dataDir, mediaDir });
 * await fetch(`${s.url}/api/health`);
 * s.child.kill('SIGTERM'); await s.exited;
 */
export async function startServe(options: ServeOptions): Promise<Serve> {
  const { dataDir, mediaDir, env = {}, args = [] } = options;
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'arbex.js'), 'serve', '--port', '0', '--no-demo', '--workers', '0', ...args], {
    cwd: ROOT,
    env: { ...process.env, ARBEX_DATA_DIR: dataDir, ARBEX_MEDIA_DIRS: mediaDir, ARBEX_TOKEN: '', PORT: '', HOST: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | NodeJS.Signals>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code ?? -1)));
  const url = await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`arbex serve exited: ${out}`);
    return /serving on (http:\/\/\S+)/.exec(out)?.[1];
  }, 120_000, 'arbex serve to listen');
  return {
    url,
    child,
    exited,
    output: () => out,
    rss: () => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024,
    jobProcesses: () => childrenOf(child.pid!, /job-child/),
  };
}
