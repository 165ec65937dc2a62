/** The dashboard's static files. Public even with a token: the page itself asks for the token. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Hono, type Context } from 'hono';
import { notFound } from './errors.js';

const STATIC_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * @example
 * app.route('/', staticRoutes(path.join(ROOT, 'web')));
 */
export function staticRoutes(webDir: string): Hono {
  const app = new Hono();
  const serve = async (c: Context, requested: string) => {
    const type = STATIC_TYPES[path.extname(requested)]!;
    const body = await readFile(path.join(webDir, requested)).catch(() => {
      throw notFound('file', requested);
    });
    return c.body(new Uint8Array(body), 200, { 'content-type': type, 'cache-control': 'no-cache' });
  };
  app.get('/', (c) => serve(c, 'index.html'));
  app.get('/:file{[\\w-]+\\.(html|js|css|svg)}', (c) => serve(c, c.req.param('file')));
  return app;
}
