/**
 * Streams a multipart/form-data upload to disk with busboy: linear time in the body's size
 * (bytes after the closing boundary are skipped, not searched again), memory bounded by the field
 * limits, the file part written straight to a new file and never held in memory, the whole body
 * capped at `maxBytes`. Every failure, including one of the file being written (folder removed,
 * disk full), becomes an HttpError and removes the partial file: nothing is thrown from an event.
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import busboy, { type Busboy } from 'busboy';
import { HttpError, badRequest, storageError } from './errors.js';

export interface MultipartOptions {
  /** Where the file part is written; must not exist yet (it is created exclusively). */
  dest: string;
  /** Largest accepted body in bytes (413 beyond). */
  maxBytes: number;
  /** Name of the form field carrying the file. */
  fileField?: string;
  /** Most text fields accepted (400 beyond). */
  maxFields?: number;
  /** Longest text field value in bytes (400 beyond). */
  maxFieldBytes?: number;
}

export interface MultipartResult {
  filename: string;
  /** Bytes of the file part. */
  bytes: number;
  fields: Record<string, string>;
}

const DEFAULTS = { fileField: 'file', maxFields: 16, maxFieldBytes: 64 * 1024 };

const payloadTooLarge = (maxBytes: number) => new HttpError(413, 'payload too large', `the upload limit is ${maxBytes} bytes`);

/** Checks the content type names multipart/form-data (415 otherwise). */
export function assertMultipart(contentType: string | undefined): string {
  if (!/^multipart\/form-data/i.test(contentType ?? '')) {
    throw new HttpError(415, 'unsupported media type', 'expected multipart/form-data or application/json');
  }
  return contentType!;
}

/**
 * Reads the body and writes the `file` part to `options.dest`.
 *
 * @example
 * const { filename, bytes, fields } = await receiveMultipart(req.body, req.headers.get('content-type'), { dest, maxBytes });
 */
export async function receiveMultipart(
  body: AsyncIterable<Uint8Array>,
  contentType: string | undefined,
  options: MultipartOptions,
): Promise<MultipartResult> {
  const { fileField, dest, maxBytes, maxFields, maxFieldBytes } = { ...DEFAULTS, ...options };
  const type = assertMultipart(contentType);
  let parser: Busboy;
  try {
    parser = busboy({
      headers: { 'content-type': type },
      defParamCharset: 'utf8',
      limits: { files: 1, fields: maxFields, parts: maxFields + 1, fieldSize: maxFieldBytes, fieldNameSize: 200, headerPairs: 20, fileSize: maxBytes },
    });
  } catch (e) {
    throw badRequest(`malformed multipart: ${(e as Error).message}`);
  }

  // The first failure wins; it also settles `failed`, which every wait below races against.
  let failure: HttpError | undefined;
  let signalFailure!: (e: HttpError) => void;
  const failed = new Promise<never>((_, reject) => (signalFailure = reject));
  failed.catch(() => {});
  const fail = (e: HttpError) => {
    if (failure) return;
    failure = e;
    signalFailure(e);
  };

  const fields: Record<string, string> = {};
  let file: { filename: string; out: WriteStream; written: Promise<number> } | undefined;
  /** Set once dest is ours: a file that was there before (open fails with EEXIST) is never removed. */
  let created = false;

  parser.on('file', (name, stream, info) => {
    if (name !== fileField) {
      fail(badRequest(`the file must be sent in the "${fileField}" field`));
      // Discarded; destroying the parser then errors this stream, which must not go unheard.
      stream.on('error', () => {}).resume();
      return;
    }
    stream.on('limit', () => fail(payloadTooLarge(maxBytes)));
    const out = createWriteStream(dest, { flags: 'wx' });
    out.on('open', () => (created = true));
    // Before pipeline's own handler: a write failure is told apart from a malformed body.
    out.on('error', (e: NodeJS.ErrnoException) => fail(storageError('the upload', e)));
    file = {
      filename: info.filename ?? '',
      out,
      written: pipeline(stream, out).then(
        () => out.bytesWritten,
        (e: Error) => {
          fail(badRequest(`malformed multipart: ${e.message}`));
          return 0;
        },
      ),
    };
  });
  parser.on('field', (name, value, info) => {
    if (info.nameTruncated || info.valueTruncated) fail(badRequest(`form field "${name}" is too long (at most ${maxFieldBytes} bytes)`));
    else fields[name] = value;
  });
  parser.on('filesLimit', () => fail(badRequest('one file per upload')));
  parser.on('fieldsLimit', () => fail(badRequest(`too many form fields (at most ${maxFields})`)));
  parser.on('partsLimit', () => fail(badRequest(`too many form parts (at most ${maxFields + 1})`)));
  parser.on('error', (e: Error) => fail(badRequest(`malformed multipart: ${e.message}`)));
  const finished = once(parser, 'finish');
  finished.catch(() => {});

  try {
    let total = 0;
    for await (const chunk of body) {
      total += chunk.length;
      if (total > maxBytes) fail(payloadTooLarge(maxBytes));
      if (failure) break;
      if (!parser.write(chunk)) await Promise.race([once(parser, 'drain'), failed]);
    }
    if (failure) throw failure;
    parser.end();
    await Promise.race([finished, failed]);
    const bytes = await file?.written;
    if (failure) throw failure;
    if (!file) throw badRequest(`no file in the "${fileField}" field`);
    return { filename: file.filename, bytes: bytes ?? 0, fields };
  } catch (e) {
    parser.destroy();
    await file?.written;
    const out = file?.out;
    if (out && !out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
    if (created) await rm(dest, { force: true });
    throw failure ?? (e instanceof HttpError ? e : badRequest(`malformed multipart: ${(e as Error).message}`));
  }
}
