/**
 * The durable half of the jobs: one folder per job under `dir`, holding `job.json` (what the job
 * is and how far it got), its uploaded input while it is unfinished, and its labels once done.
 * `job.json` is replaced atomically (written beside, flushed to disk, renamed over), so a crash
 * at any moment leaves either the old record or the new one, never a torn one.
 */
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { SmoothingSpec } from '../pipeline/smooth/index.js';
import { JobInfo } from './schemas.js';

export const JobRecord = z.object({
  info: JobInfo,
  request: z.object({
    /** Real path of the media file; absent for an upload (then `input` in the job's folder). */
    media: z.string().optional(),
    smoothing: SmoothingSpec.optional(),
    detectEvery: z.number().int().optional(),
    /** Bytes of the uploaded input, counted against the queue's upload budget. */
    uploadBytes: z.number().int().optional(),
  }),
  /** Runs started (a run interrupted by a crash counts). */
  attempts: z.number().int(),
});
export type JobRecord = z.infer<typeof JobRecord>;

export interface JobStore {
  /** The job's folder. */
  dirOf(id: string): string;
  /** Creates the job's folder. */
  create(id: string): Promise<void>;
  /** Replaces the job's record atomically; saves of one job complete in call order. */
  save(record: JobRecord): Promise<void>;
  /**
   * Every stored job, after reclaiming what a crash leaves behind: partial label files and
   * record temp files in every job folder, and folders without a record (a crash while a job
   * was created). A record that cannot be read is reported and its folder left alone.
   */
  load(): Promise<{ records: JobRecord[]; reclaimed: number; unreadable: string[] }>;
  /** Deletes the job's folder. */
  remove(id: string): Promise<void>;
}

const RECORD = 'job.json';
const TEMP = /^(\..*\.partial-\d+|job\.json\.tmp-\d+)$/;

function parseRecord(text: string): JobRecord | undefined {
  try {
    const parsed = JobRecord.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const temp = `${file}.tmp-${process.pid}`;
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
}

/**
 * @example
 * const store = createJobStore({ dir: 'data/server/jobs' });
 * const { records } = await store.load();
 */
export function createJobStore(options: { dir: string }): JobStore {
  const { dir } = options;
  const dirOf = (id: string) => path.join(dir, id);
  const saving = new Map<string, Promise<void>>();

  return {
    dirOf,
    async create(id) {
      await mkdir(dirOf(id), { recursive: true });
    },
    save(record) {
      const id = record.info.id;
      const text = `${JSON.stringify(record)}\n`;
      const next = (saving.get(id) ?? Promise.resolve()).catch(() => {}).then(() => writeAtomic(path.join(dirOf(id), RECORD), text));
      saving.set(id, next);
      const forget = () => {
        if (saving.get(id) === next) saving.delete(id);
      };
      next.then(forget, forget);
      return next;
    },
    async load() {
      await mkdir(dir, { recursive: true });
      const records: JobRecord[] = [];
      const unreadable: string[] = [];
      let reclaimed = 0;
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        if (!entry.isDirectory()) continue;
        const jobDir = path.join(dir, entry.name);
        let text: string;
        try {
          text = await readFile(path.join(jobDir, RECORD), 'utf8');
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          await rm(jobDir, { recursive: true, force: true });
          reclaimed++;
          continue;
        }
        const record = parseRecord(text);
        if (!record || record.info.id !== entry.name) {
          unreadable.push(jobDir);
          continue;
        }
        for (const file of await readdir(jobDir)) {
          if (!TEMP.test(file)) continue;
          await rm(path.join(jobDir, file), { force: true });
          reclaimed++;
        }
        records.push(record);
      }
      return { records, reclaimed, unreadable };
    },
    async remove(id) {
      await saving.get(id)?.catch(() => {});
      await rm(dirOf(id), { recursive: true, force: true });
    },
  };
}
