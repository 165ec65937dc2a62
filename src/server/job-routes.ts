/**
 * The labelling-job routes. A job's video is opened and checked once (media.ts), probed, and
 * refused with a clear 4xx when it is not a video or exceeds the limits, all before it is queued;
 * uploads are counted against the queue's byte budget while they arrive.
 */
import { mkdir, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import type { Limits } from '../env.js';
import { ProbeError, type VideoProbe } from '../ingest/probe.js';
import { HttpError, badRequest, notFound, storageError } from './errors.js';
import type { Jobs, UploadReservation } from './jobs.js';
import { openChecked, openMediaFile, type OpenedFile } from './media.js';
import { assertMultipart, receiveMultipart } from './multipart.js';
import { CreateJobBody, UploadFields, describeIssues } from './schemas.js';

export interface JobRoutesDeps {
  jobs: Jobs;
  /** Folders a job's `{path}` must lie in. */
  mediaDirs: string[];
  /** Where uploads are written while they arrive. */
  uploadDir: string;
  limits: Pick<Limits, 'maxUploadBytes' | 'maxJobFrames' | 'maxJobSeconds' | 'maxFramePixels'>;
  /** Reads a video's header; rejects with a ProbeError when it is not a video. */
  probe(file: string, name: string): Promise<VideoProbe>;
  /** Called with the size of every upload received, for /metrics. */
  onUpload?(bytes: number): void;
}

/** The body, counted against the upload budget as it arrives. */
async function* metered(body: AsyncIterable<Uint8Array>, reservation: UploadReservation): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    reservation.add(chunk.length);
    yield chunk;
  }
}

/**
 * @example
 * app.route('/', jobRoutes({ jobs, mediaDirs, uploadDir, limits, probe }));
 */
export function jobRoutes(deps: JobRoutesDeps): Hono {
  const { jobs, mediaDirs, uploadDir, limits, probe, onUpload } = deps;
  const app = new Hono();

  /** Probes the opened input and checks it against the limits; closes it when refusing it. */
  const admit = async (input: OpenedFile, name: string): Promise<void> => {
    try {
      const p = await probe(input.readPath, name).catch((e: unknown) => {
        throw e instanceof ProbeError ? new HttpError(422, 'not a video', e.message) : e;
      });
      if (p.durationSec !== undefined && p.durationSec > limits.maxJobSeconds) {
        throw new HttpError(413, 'video too long', `${name} lasts ${Math.round(p.durationSec)} s, the limit is ${limits.maxJobSeconds} s`);
      }
      if (p.frames !== undefined && p.frames > limits.maxJobFrames) {
        throw new HttpError(413, 'video too long', `${name} has about ${p.frames} frames, the limit is ${limits.maxJobFrames}`);
      }
      if (p.width * p.height > limits.maxFramePixels) {
        throw new HttpError(413, 'frames too large', `${name} is ${p.width}x${p.height}, the limit is ${limits.maxFramePixels} pixels a frame`);
      }
    } catch (e) {
      await input.close();
      throw e;
    }
  };

  const receiveUpload = async (body: ReadableStream<Uint8Array>, type: string) => {
    await mkdir(uploadDir, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
      throw storageError('the upload', e);
    });
    const dest = path.join(uploadDir, `${randomUUID()}.part`);
    const reservation = jobs.reserveUpload();
    try {
      // Node's web ReadableStream is async-iterable; the DOM typings in lib do not say so.
      const chunks = metered(body as unknown as AsyncIterable<Uint8Array>, reservation);
      const upload = await receiveMultipart(chunks, type, { dest, maxBytes: limits.maxUploadBytes });
      onUpload?.(upload.bytes);
      const fields = UploadFields.safeParse(upload.fields);
      if (!fields.success) throw badRequest(describeIssues(fields.error));
      const { name = upload.filename || 'upload', smoothing, detectEvery } = fields.data;
      const input = await openChecked(dest).catch((e: NodeJS.ErrnoException) => {
        throw storageError('the upload', e);
      });
      await admit(input, name);
      return await jobs.start({ input, name, smoothing, detectEvery, upload: reservation });
    } finally {
      reservation.release();
      await rm(dest, { force: true });
    }
  };

  app.post('/api/jobs', async (c) => {
    const type = c.req.header('content-type') ?? '';
    if (/^application\/json/i.test(type)) {
      const raw = await c.req.json().catch(() => {
        throw badRequest('malformed JSON');
      });
      const body = CreateJobBody.safeParse(raw);
      if (!body.success) throw badRequest(describeIssues(body.error));
      jobs.assertRoom();
      const input = await openMediaFile(body.data.path, mediaDirs);
      const { name = path.basename(input.path), smoothing, detectEvery } = body.data;
      await admit(input, name);
      return c.json(await jobs.start({ input, name, smoothing, detectEvery }), 201);
    }
    assertMultipart(type);
    const length = Number(c.req.header('content-length'));
    if (Number.isFinite(length) && length > limits.maxUploadBytes) {
      throw new HttpError(413, 'payload too large', `the upload limit is ${limits.maxUploadBytes} bytes`);
    }
    jobs.assertRoom(true);
    if (!c.req.raw.body) throw badRequest('empty body');
    return c.json(await receiveUpload(c.req.raw.body, type), 201);
  });

  app.get('/api/jobs', (c) => c.json(jobs.list()));

  app.get('/api/jobs/:id', (c) => {
    const job = jobs.get(c.req.param('id'));
    if (!job) throw notFound('job', c.req.param('id'));
    return c.json(job);
  });

  app.get('/api/jobs/:id/:file{labels\\.(csv|jsonl)}', async (c) => {
    const id = c.req.param('id');
    const job = jobs.get(id);
    if (!job) throw notFound('job', id);
    const kind = c.req.param('file').endsWith('.csv') ? 'csv' : 'jsonl';
    const file = await jobs.output(id, kind);
    if (!file) throw new HttpError(409, 'job not done', `job ${id} is ${job.state}`);
    // Opened before answering: a file deleted meanwhile is a 404, not a broken stream.
    const handle = await open(file).catch(() => {
      throw new HttpError(404, 'labels missing', `the labels of job ${id} are gone`);
    });
    const base = job.name.replace(/\.[^.]*$/, '').replace(/[^\w.-]+/g, '_') || 'labels';
    return c.body(Readable.toWeb(handle.createReadStream()) as ReadableStream, 200, {
      'content-type': kind === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson',
      'content-disposition': `attachment; filename="${base}.labels.${kind}"`,
    });
  });

  app.delete('/api/jobs/:id', async (c) => {
    const job = await jobs.remove(c.req.param('id'));
    if (!job) throw notFound('job', c.req.param('id'));
    return c.json(job);
  });

  return app;
}
