/**
 * Streams a multipart/form-data upload to disk: the file part goes straight to a file and is never
 * held in memory (only a boundary-sized tail is), small text fields are collected, and the whole
 * body is capped at `maxBytes`.
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { HttpError } from './errors.js';

export interface MultipartOptions {
  /** Where the file part is written. */
  dest: string;
  /** Largest accepted body in bytes (413 beyond). */
  maxBytes: number;
  /** Name of the form field carrying the file. */
  fileField?: string;
}

export interface MultipartResult {
  filename: string;
  bytes: number;
  fields: Record<string, string>;
}

const MAX_HEADER_BYTES = 16 * 1024;
const MAX_FIELD_BYTES = 64 * 1024;

export function boundaryOf(contentType: string | undefined): string {
  if (!/^multipart\/form-data/i.test(contentType ?? '')) {
    throw new HttpError(415, 'unsupported media type', 'expected multipart/form-data or application/json');
  }
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType!);
  const b = m?.[1] ?? m?.[2];
  if (!b || b.length > 70) throw new HttpError(400, 'bad request', 'multipart body without a valid boundary');
  return b;
}

function parsePartHeaders(text: string): { name?: string; filename?: string } {
  const disposition = text.split('\r\n').find((l) => /^content-disposition:/i.test(l)) ?? '';
  const name = /\bname="([^"]*)"/i.exec(disposition)?.[1];
  const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1];
  return { name, filename };
}

/**
 * Reads the body and writes the `file` part to `options.dest`.
 *
 * @example
 * const { filename, bytes } = await receiveMultipart(req.body, req.headers.get('content-type'), { dest, maxBytes });
 */
export async function receiveMultipart(
  body: AsyncIterable<Uint8Array>,
  contentType: string | undefined,
  options: MultipartOptions,
): Promise<MultipartResult> {
  const { fileField, dest, maxBytes } = { fileField: 'file', ...options };
  const boundary = boundaryOf(contentType);
  const first = Buffer.from(`--${boundary}`);
  const delimiter = Buffer.from(`\r\n--${boundary}`);

  let state: 'preamble' | 'after-delimiter' | 'headers' | 'body' | 'done' = 'preamble';
  let buf = Buffer.alloc(0);
  let total = 0;
  let out: WriteStream | undefined;
  let filename: string | undefined;
  let fileBytes = 0;
  let part: { name?: string; filename?: string } = {};
  let field: Buffer[] = [];
  let fieldBytes = 0;
  const fields: Record<string, string> = {};

  const write = async (data: Buffer) => {
    if (data.length === 0) return;
    if (part.filename !== undefined) {
      fileBytes += data.length;
      if (!out!.write(data)) await once(out!, 'drain');
    } else {
      fieldBytes += data.length;
      if (fieldBytes > MAX_FIELD_BYTES) throw new HttpError(400, 'bad request', `form field "${part.name}" is too long`);
      field.push(data);
    }
  };

  const endPart = async () => {
    if (part.filename !== undefined) {
      out!.end();
      await once(out!, 'finish');
    } else if (part.name !== undefined) {
      fields[part.name] = Buffer.concat(field).toString('utf8');
    }
    field = [];
    fieldBytes = 0;
  };

  try {
    for await (const chunk of body) {
      total += chunk.length;
      if (total > maxBytes) throw new HttpError(413, 'payload too large', `the upload limit is ${maxBytes} bytes`);
      buf = buf.length ? Buffer.concat([buf, chunk]) : Buffer.from(chunk);
      for (;;) {
        if (state === 'preamble') {
          const i = buf.indexOf(first);
          if (i < 0) {
            buf = buf.subarray(Math.max(0, buf.length - first.length + 1));
            break;
          }
          buf = buf.subarray(i + first.length);
          state = 'after-delimiter';
        } else if (state === 'after-delimiter') {
          if (buf.length < 2) break;
          const tail = buf.subarray(0, 2).toString('latin1');
          if (tail === '--') {
            state = 'done';
          } else if (tail === '\r\n') {
            buf = buf.subarray(2);
            state = 'headers';
          } else {
            throw new HttpError(400, 'bad request', 'malformed multipart delimiter');
          }
        } else if (state === 'headers') {
          const i = buf.indexOf('\r\n\r\n');
          if (i < 0) {
            if (buf.length > MAX_HEADER_BYTES) throw new HttpError(400, 'bad request', 'multipart part headers too long');
            break;
          }
          part = parsePartHeaders(buf.subarray(0, i).toString('utf8'));
          buf = buf.subarray(i + 4);
          if (part.filename !== undefined) {
            if (part.name !== fileField) throw new HttpError(400, 'bad request', `the file must be sent in the "${fileField}" field`);
            if (out) throw new HttpError(400, 'bad request', 'one file per upload');
            filename = part.filename;
            out = createWriteStream(dest);
          }
          state = 'body';
        } else if (state === 'body') {
          const i = buf.indexOf(delimiter);
          if (i < 0) {
            // Keep a tail that may hold the start of a delimiter split across chunks.
            const safe = Math.max(0, buf.length - delimiter.length + 1);
            await write(buf.subarray(0, safe));
            buf = buf.subarray(safe);
            break;
          }
          await write(buf.subarray(0, i));
          await endPart();
          buf = buf.subarray(i + delimiter.length);
          state = 'after-delimiter';
        } else {
          break;
        }
      }
      // Copy the small remainder so the large chunk it points into can be collected.
      buf = Buffer.from(buf);
    }
    if (state !== 'done') throw new HttpError(400, 'bad request', 'truncated multipart body');
    if (filename === undefined) throw new HttpError(400, 'bad request', `no file in the "${fileField}" field`);
    return { filename, bytes: fileBytes, fields };
  } catch (e) {
    out?.destroy();
    await rm(dest, { force: true });
    throw e;
  }
}
