/** Fixtures for ingest tests: media made at test time, a real RTSP server, child-process checks. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { FACE_PAN, MEDIA } from '../fixtures/media.js';
import { waitFor } from '../support/async.js';

// The fixture media (test/fixtures/media.ts), re-exported for the ingest tests.
export { FACE_PAN, MEDIA };

const run = promisify(execFile);

// The system interpreter: python3-gi is installed for it, not for any pyenv/venv python on PATH.
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** Listens on any free port of `host`; resolves with the port. */
export async function listen(server: net.Server, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((r) => server.listen(0, host, r));
  return (server.address() as net.AddressInfo).port;
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'arbex-ingest-'));
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function rtspServerAvailable(): Promise<string | undefined> {
  try {
    await run(SYSTEM_PYTHON, ['-c', "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"]);
    return undefined;
  } catch (e) {
    return `GStreamer RTSP server not available (apt packages in .ci/apt-packages.txt): ${(e as Error).message.split('\n')[0]}`;
  }
}

export interface RtspServer {
  port: number;
  url: string;
  stop(): Promise<void>;
}

/** Starts test/ingest/rtsp_server.py serving `clip` at rtsp://127.0.0.1:port/clip (port 0: any free). */
export function startRtspServer(clip: string, port = 0): Promise<RtspServer> {
  const proc: ChildProcess = spawn(SYSTEM_PYTHON, [path.join(import.meta.dirname, 'rtsp_server.py'), clip, String(port)], {
    // stdin stays open while we live: the server exits when it closes.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`RTSP server did not start: ${stderr}`));
    }, 15_000);
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        const p = Number(m[1]);
        resolve({ port: p, url: `rtsp://127.0.0.1:${p}/clip`, stop });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`RTSP server exited (${code}): ${stderr}`));
    });
  });
}

/** Waits until `predicate` holds, polling; throws with `what` after `timeoutMs`. */
export async function until(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(predicate, timeoutMs, what);
}
