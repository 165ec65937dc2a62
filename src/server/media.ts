/**
 * Opening a job's video once and checking what was opened, not what a path named a moment
 * earlier: a symbolic link swapped in between a check and a later open cannot redirect a job out
 * of the media folders. The file stays open until its job ends and is read through the handle's
 * own name, `/proc/<pid>/fd/<n>`, by ffmpeg (in this process or in a job process). Where there
 * is no /proc (not Linux), the path is resolved and the handle's device and inode must match it;
 * ffmpeg then reads the resolved path.
 */
import { constants, existsSync } from 'node:fs';
import { open, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { isInsideMediaDirs, mediaCandidates, realMediaDirs } from '../ingest/index.js';
import { HttpError } from './errors.js';

export interface OpenedFile {
  /** The file's real path (symbolic links resolved), as checked. */
  readonly path: string;
  /** A name that reads exactly the opened file: `/proc/<pid>/fd/<n>`, or `path` without /proc. */
  readonly readPath: string;
  readonly size: number;
  close(): Promise<void>;
}

const PROC_FD = '/proc/self/fd';

/** Opens without blocking on a FIFO or device; regular files are checked after the open. */
const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

async function realPathOf(handle: FileHandle, requested: string): Promise<string> {
  if (existsSync(PROC_FD)) return readlink(`${PROC_FD}/${handle.fd}`);
  const [real, opened] = await Promise.all([realpath(requested), handle.stat()]);
  const named = await stat(real);
  if (named.dev !== opened.dev || named.ino !== opened.ino) throw new Error(`${requested} changed while it was opened`);
  return real;
}

/**
 * Opens `file` and describes it; `check(realPath)` may refuse it (throwing), in which case the
 * handle is closed. Throws the open's own error (ENOENT, EACCES...) when it cannot be opened.
 *
 * @example
 * const input = await openChecked('/srv/media/clip.mp4', (real) => assertInside(real));
 * try { await probe(input.readPath); } finally { await input.close(); }
 */
export async function openChecked(file: string, check: (realPath: string) => void | Promise<void> = () => {}): Promise<OpenedFile> {
  const handle = await open(file, FLAGS);
  try {
    const real = await realPathOf(handle, file);
    await check(real);
    const s = await handle.stat();
    if (!s.isFile()) throw new HttpError(422, 'refused source', `${path.basename(file)} is not a regular file`);
    const readPath = existsSync(PROC_FD) ? `/proc/${process.pid}/fd/${handle.fd}` : real;
    let closed = false;
    return {
      path: real,
      readPath,
      size: s.size,
      async close() {
        if (closed) return;
        closed = true;
        await handle.close();
      },
    };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/**
 * Opens a job's `{path}`: absolute, or relative to a media folder (tried in order); refuses with
 * 422 anything whose opened file is not inside a media folder.
 *
 * @example
 * const input = await openMediaFile('clip.mp4', ['/srv/media']);
 */
export async function openMediaFile(requested: string, mediaDirs: string[]): Promise<OpenedFile> {
  const dirs = realMediaDirs(mediaDirs);
  for (const candidate of mediaCandidates(requested, mediaDirs)) {
    let opened: OpenedFile;
    try {
      opened = await openChecked(candidate, (real) => {
        if (!isInsideMediaDirs(real, dirs)) throw new HttpError(422, 'refused source', `${requested} is outside the media folders`);
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      if (e instanceof HttpError) throw e;
      throw new HttpError(422, 'refused source', `${requested} cannot be read (${code ?? (e as Error).message})`);
    }
    return opened;
  }
  throw new HttpError(422, 'refused source', `${requested} does not exist in the media folders`);
}
