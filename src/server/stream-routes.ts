/**
 * The stream routes: open, list, read, stop and delete live streams. A stream that ends, fails
 * or is stopped stays listed with its final state until it is deleted.
 */
import { Hono } from 'hono';
import { zValidator } from '@hono/zod-validator';
import type { Engine, StreamHandle } from '../pipeline/types.js';
import { HttpError, badRequest, notFound } from './errors.js';
import { publicInfo } from './hub.js';
import { assertStreamRoom } from './limits.js';
import { CreateStreamBody, describeIssues } from './schemas.js';

export interface StreamRoutesDeps {
  engine: Engine;
  /** Streams running at once (429 beyond). */
  maxStreams: number;
}

/**
 * @example
 * app.route('/api/streams', streamRoutes({ engine, maxStreams: 16 }));
 */
export function streamRoutes({ engine, maxStreams }: StreamRoutesDeps): Hono {
  const app = new Hono();

  const stream = (id: string): StreamHandle => {
    const h = engine.streams().find((s) => s.id === id);
    if (!h) throw notFound('stream', id);
    return h;
  };

  app.post(
    '/',
    zValidator('json', CreateStreamBody, (result) => {
      if (!result.success) throw badRequest(describeIssues(result.error));
    }),
    (c) => {
      const body = c.req.valid('json');
      assertStreamRoom(engine, maxStreams);
      let handle: StreamHandle;
      try {
        handle = engine.openStream(body.source, { name: body.name, fps: body.fps, smoothing: body.smoothing, loop: body.loop });
      } catch (e) {
        // The engine throws synchronously only to refuse a source (bad URL, file outside media, ...).
        throw new HttpError(422, 'refused source', (e as Error)?.message ?? String(e));
      }
      return c.json({ id: handle.id }, 201);
    },
  );

  app.get('/', (c) => c.json(engine.streams().map((h) => publicInfo(h.info()))));

  app.get('/:id', (c) => c.json(publicInfo(stream(c.req.param('id')).info())));

  app.get('/:id/frame.jpg', async (c) => {
    const jpeg = await stream(c.req.param('id')).latestJpeg();
    if (!jpeg) throw new HttpError(404, 'no frame yet', c.req.param('id'));
    return c.body(new Uint8Array(jpeg), 200, { 'content-type': 'image/jpeg', 'cache-control': 'no-store' });
  });

  app.post('/:id/stop', async (c) => {
    const handle = stream(c.req.param('id'));
    await handle.stop();
    return c.json(publicInfo(handle.info()));
  });

  app.delete('/:id', async (c) => {
    if (!(await engine.removeStream(c.req.param('id')))) throw notFound('stream', c.req.param('id'));
    return c.body(null, 204);
  });

  return app;
}
