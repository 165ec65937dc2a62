/**
 * The entry of a job process (see job-process.ts): waits for one `run` message, builds an engine
 * from the named module, labels the job, reports the result and exits. Leaves at once when the
 * server is gone; ffmpeg processes are killed on exit by ingest.
 */
import { pathToFileURL } from 'node:url';
import type { Engine } from '../pipeline/types.js';
import type { FromChild, ToChild } from './job-process.js';
import { labelJob } from './job-runner.js';

const stop = new AbortController();
const report = (message: FromChild) => new Promise<void>((resolve) => process.send!(message, () => resolve()));

// The server died (even by kill -9): nobody wants the result.
process.on('disconnect', () => process.exit(1));
process.on('SIGTERM', () => stop.abort());
process.on('SIGINT', () => {});

process.on('message', async (message: ToChild) => {
  if (message.type === 'stop') return stop.abort();
  let engine: Engine | undefined;
  let progressAt = 0;
  try {
    const url = message.module.startsWith('file:') ? message.module : pathToFileURL(message.module).href;
    const { createJobEngine } = (await import(url)) as { createJobEngine(spec: unknown): Promise<Engine> };
    engine = await createJobEngine(message.spec);
    const { frames } = await labelJob(engine, message.task, {
      signal: stop.signal,
      onProgress: (done, total) => {
        const now = Date.now();
        if (now - progressAt < 100) return;
        progressAt = now;
        void report({ type: 'progress', done, total });
      },
    });
    await report({ type: 'done', frames });
  } catch (e) {
    await report({ type: 'failed', error: (e as Error)?.message ?? String(e) });
  } finally {
    await engine?.close();
    process.exit(0);
  }
});
