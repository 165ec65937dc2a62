/**
 * All-or-nothing output files: everything is written to a hidden temporary file beside the
 * target and renamed over it only once complete, so an interrupted or failed run never leaves a
 * half-written file under the final name.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';

export interface AtomicFile {
  readonly path: string;
  /** The temporary file being written. */
  readonly tempPath: string;
  /** Appends text, waiting when the disk is behind. */
  write(text: string): Promise<void>;
  /** Closes and renames onto `path`. */
  commit(): Promise<void>;
  /** Closes and deletes the temporary file; safe to call more than once, or after commit. */
  abort(): Promise<void>;
}

const tempOf = (file: string) => path.join(path.dirname(file), `.${path.basename(file)}.partial-${process.pid}`);

/**
 * @example
 * const out = await openAtomic('labels.csv');
 * try { await out.write('a,b\n'); await out.commit(); } finally { await out.abort(); }
 */
export async function openAtomic(file: string): Promise<AtomicFile> {
  const target = path.resolve(file);
  await mkdir(path.dirname(target), { recursive: true });
  const tempPath = tempOf(target);
  const stream: WriteStream = createWriteStream(tempPath);
  await once(stream, 'open');
  let state: 'open' | 'done' = 'open';
  // Kept rather than thrown from an event: the next write or commit reports it, and writes still
  // buffered when abort() destroys the stream must not surface as an unhandled 'error'.
  let failure: Error | undefined;
  stream.on('error', (e) => (failure ??= e));
  const close = () => new Promise<void>((resolve, reject) => stream.end((e?: Error | null) => (e || failure ? reject(e ?? failure) : resolve())));
  return {
    path: target,
    tempPath,
    async write(text) {
      if (failure) throw failure;
      if (!stream.write(text)) await once(stream, 'drain');
    },
    async commit() {
      await close();
      await rename(tempPath, target);
      state = 'done';
    },
    async abort() {
      if (state === 'done') return;
      state = 'done';
      if (!stream.closed) {
        const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
        stream.destroy();
        await closed;
      }
      await rm(tempPath, { force: true });
    },
  };
}

/** Writes a whole file atomically. */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  const target = path.resolve(file);
  await mkdir(path.dirname(target), { recursive: true });
  const temp = tempOf(target);
  try {
    await writeFile(temp, content);
    await rename(temp, target);
  } finally {
    await rm(temp, { force: true });
  }
}
