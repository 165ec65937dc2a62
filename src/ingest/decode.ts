/**
 * One ffmpeg decode process: a vetted source in, raw RGB frames out, each tagged with its source
 * frame number and timestamp. The command line is built in command.ts and its stderr read in
 * stderr.ts; this module runs the process and pairs the frames' log lines with their stdout bytes.
 *
 * Why no separate probe: `@ffmpeg-installer/ffmpeg` ships no ffprobe, and a probe would open a
 * live stream twice. Instead the decode process describes itself on stderr (stderr.ts): the
 * input's codec, size and rate, and for every frame written to stdout its source index, pts and
 * size, which says how many stdout bytes make that frame.
 * ffmpeg logs a frame before writing it, but stderr and stdout are separate pipes, so bytes that
 * arrive ahead of their log line wait for it.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import ffmpeg, { type FfmpegCommand } from 'fluent-ffmpeg';
import { decodeCommand, routedEnv, type CommandOptions, type DecodeCommand } from './command.js';
import { createStderrReader, type FrameMeta, type SourceInfo } from './stderr.js';

export type { SourceInfo } from './stderr.js';

export interface DecodedFrame {
  /** Frame number among the frames this process decoded (0-based). */
  n: number;
  /** Presentation time in seconds as ffmpeg reports it (start of source = 0). */
  ptsSec: number;
  width: number;
  height: number;
  data: Uint8Array;
}

/** The binary and what its command is built from (command.ts). */
export interface DecodeConfig extends CommandOptions {
  ffmpegPath: string;
}

export interface DecodeHandlers {
  onInfo(info: SourceInfo): void;
  onFrame(frame: DecodedFrame): void;
  /** Called once, after the process has exited and every frame it wrote was delivered. */
  onExit(error: Error | undefined): void;
}

export interface DecodeSession {
  /** Stops reading stdout, so ffmpeg blocks on its next write (files: back-pressure). */
  pause(): void;
  resume(): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  kill(graceMs: number): Promise<void>;
}

/**
 * Why `file` cannot be run, or undefined when it can. Checked before spawning because
 * fluent-ffmpeg 2.1 throws an uncaught TypeError (reading its output rings) when a spawn fails
 * after its capability cache is warm, which would take the whole process down.
 */
function checkExecutable(file: string): string | undefined {
  const candidates = file.includes('/') ? [file] : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((d) => path.join(d, file));
  const ok = candidates.some((c) => {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return fs.statSync(c).isFile();
    } catch {
      return false;
    }
  });
  return ok ? undefined : `ffmpeg binary not found or not executable: ${file}`;
}

// Every ffmpeg started here, so that none outlives this process even when no one called stop().
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(proc: ChildProcess): void {
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const p of running) p.kill('SIGKILL');
    });
  }
}

/**
 * The fluent-ffmpeg command for `cmd`, run by `config.ffmpegPath`, with the guard's proxy in its
 * environment when the source has a route.
 */
function fluentCommand(config: DecodeConfig, cmd: DecodeCommand): FfmpegCommand {
  const command = ffmpeg({ stdoutLines: 40 }).input(cmd.input).inputOptions(...cmd.inputOptions).outputOptions(...cmd.outputOptions);
  // setFfmpegPath() would set one path for every command in the process; each source may have
  // its own, so this command's path lookup is answered directly.
  (command as unknown as { _getFfmpegPath: (cb: (err: null, path: string) => void) => void })._getFfmpegPath = (cb) =>
    cb(null, config.ffmpegPath);
  if (config.route) {
    // Every connection ffmpeg makes goes through the guard's proxy (command.ts routedEnv).
    const spawnOptions = { env: routedEnv(config.route, process.env) };
    const internals = command as unknown as { _spawnFfmpeg: (args: string[], options: object, ...rest: unknown[]) => void };
    const spawn = internals._spawnFfmpeg;
    internals._spawnFfmpeg = (args, options, ...rest) => spawn.call(command, args, { ...options, ...spawnOptions }, ...rest);
  }
  return command;
}

/** Bytes read from stdout, taken out a frame at a time. */
function byteQueue(): { push(chunk: Buffer): void; size(): number; take(size: number): Uint8Array } {
  const chunks: Buffer[] = [];
  let buffered = 0;
  return {
    push(chunk) {
      chunks.push(chunk);
      buffered += chunk.length;
    },
    size: () => buffered,
    take(size) {
      const data = new Uint8Array(size);
      let filled = 0;
      while (filled < size) {
        const c = chunks[0];
        const need = size - filled;
        if (c.length <= need) {
          data.set(c, filled);
          filled += c.length;
          chunks.shift();
        } else {
          data.set(c.subarray(0, need), filled);
          chunks[0] = c.subarray(need);
          filled += need;
        }
      }
      buffered -= size;
      return data;
    },
  };
}

/**
 * SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. `proc()` is the
 * process once spawned: before that, waits for the spawn (then kills) or for fluent-ffmpeg to give up.
 */
function terminate(command: FfmpegCommand, proc: () => ChildProcess | undefined, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const waitFor = (p: ChildProcess): void => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
      p.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      p.kill('SIGTERM');
    };
    const spawned = proc();
    if (spawned) return waitFor(spawned);
    command.once('start', () => {
      const p = proc();
      return p ? waitFor(p) : resolve();
    });
    command.once('error', () => {
      if (!proc()) resolve();
    });
  });
}

/**
 * Starts ffmpeg on a vetted source and reports frames, source info and the end through
 * `handlers`. Frame data is a fresh Uint8Array per frame (width*height*3 bytes).
 *
 * @example
 * const s = startDecode({ ffmpegPath, source, maxSide: 320, realtime: false, loop: false,
 *   strict: true, rtspTransport: 'tcp' }, { onInfo, onFrame: (f) => use(f), onExit: (err) => {} });
 */
export function startDecode(config: DecodeConfig, handlers: DecodeHandlers): DecodeSession {
  const missing = checkExecutable(config.ffmpegPath);
  if (missing) {
    queueMicrotask(() => handlers.onExit(new Error(`ffmpeg failed on ${config.source.input}: ${missing}`)));
    return { pause() {}, resume() {}, kill: () => Promise.resolve() };
  }
  const cmd = decodeCommand(config);
  // emitClose:false keeps fluent-ffmpeg from reading our stream's close as "consumer gone" and
  // killing ffmpeg 20 ms later, which would race with a normal end.
  const out = new PassThrough({ emitClose: false });
  const command = fluentCommand(config, cmd);

  let proc: ChildProcess | undefined;
  let killRequested = false;
  let finished = false; // fluent-ffmpeg reported the end
  let finishError: Error | undefined;
  let stdoutEnded = false;
  let reported = false;
  let held = false;

  // stderr: the output frames' log lines, waiting for their stdout bytes
  const reader = createStderrReader(cmd.lastShowinfo);
  const metas: FrameMeta[] = [];

  const bytes = byteQueue(); // stdout

  /** Whether a whole frame is waiting in the stdout bytes. */
  const frameReady = (): boolean => metas.length > 0 && bytes.size() >= metas[0].width * metas[0].height * 3;

  function drain(): void {
    // While held, complete frames stay as bytes: the consumer's queue never grows past its limit.
    while (!held && frameReady()) {
      const m = metas.shift()!;
      const data = bytes.take(m.width * m.height * 3);
      if (killRequested) continue;
      handlers.onFrame({ n: m.n, ptsSec: m.pts === undefined ? NaN : m.pts * reader.timeBase(), width: m.width, height: m.height, data });
    }
  }

  function onStderr(line: string): void {
    const { info, frame } = reader.read(line);
    if (info) handlers.onInfo(info);
    if (frame) {
      metas.push(frame);
      drain();
    }
  }

  function maybeReport(): void {
    // A process that was killed or never started has no more frames worth waiting for.
    const delivered = stdoutEnded && !frameReady();
    if (reported || !finished || !(delivered || killRequested || proc === undefined)) return;
    reported = true;
    handlers.onExit(finishError);
  }

  out.on('data', (chunk: Buffer) => {
    if (killRequested) return;
    bytes.push(chunk);
    drain();
  });
  out.on('end', () => {
    stdoutEnded = true;
    maybeReport();
  });

  command.on('start', () => {
    proc = (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc;
    // No pid: the spawn failed (e.g. a wrong ffmpeg path); fluent-ffmpeg reports it as an error.
    if (proc?.pid === undefined) proc = undefined;
    else track(proc);
  });
  command.on('stderr', onStderr);
  command.on('end', () => {
    finished = true;
    maybeReport();
  });
  command.on('error', (err: Error) => {
    finished = true;
    if (!killRequested) {
      const why = reader.diagnosis();
      const code = /exited with code (\d+)/.exec(err.message)?.[1];
      finishError = new Error(
        code !== undefined ? `ffmpeg failed (exit ${code}) on ${config.source.input}: ${why || 'no diagnostic'}` : `ffmpeg failed on ${config.source.input}: ${err.message}`,
      );
    }
    maybeReport();
  });
  command.output(out).run();

  let exited: Promise<void> | undefined;
  return {
    pause() {
      held = true;
      out.pause();
    },
    resume() {
      held = false;
      out.resume();
      drain();
      maybeReport();
    },
    kill(graceMs: number): Promise<void> {
      if (exited) return exited;
      killRequested = true;
      held = false;
      // Keep stdout flowing (and discarded) so a paused ffmpeg is not stuck in write().
      out.resume();
      exited = terminate(command, () => proc, graceMs);
      return exited;
    },
  };
}
