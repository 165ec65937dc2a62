/** Request-level caps of the HTTP API: the size of JSON bodies and the number of open streams. */
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Engine } from '../pipeline/types.js';
import { HttpError } from './errors.js';

/** Largest JSON (or other non-multipart) request body. */
export const MAX_JSON_BYTES = 64 * 1024;

/**
 * Caps every request body that is not multipart at `maxBytes` (413): from Content-Length before
 * anything is read, else while it is read. Multipart bodies are left to the upload's own limit.
 *
 * @example
 * app.use('/api/*', jsonBodyLimit());
 */
export function jsonBodyLimit(maxBytes = MAX_JSON_BYTES): MiddlewareHandler {
  const limit = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new HttpError(413, 'payload too large', `request bodies are limited to ${maxBytes} bytes`);
    },
  });
  return (c, next) => (/^multipart\//i.test(c.req.header('content-type') ?? '') ? next() : limit(c, next));
}

/** States of a stream that holds nothing any more (it stays listed until deleted). */
const FINISHED = ['ended', 'failed', 'stopped'];

/** Throws 429 when `maxStreams` streams are running already. */
export function assertStreamRoom(engine: Pick<Engine, 'streams'>, maxStreams: number): void {
  const open = engine.streams().filter((s) => !FINISHED.includes(s.info().state)).length;
  if (open >= maxStreams) {
    throw new HttpError(429, 'too many streams', `${open} streams are running, the limit is ${maxStreams}; stop one first`);
  }
}
