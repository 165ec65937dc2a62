/** Line-by-line reading of text files, streamed, with 1-based line numbers. */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

/** Yields [lineNumber, text] with a UTF-8 BOM and trailing CR removed. */
export async function* readLines(file: string): AsyncGenerator<[number, string]> {
  const rl = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const raw of rl) {
      n++;
      yield [n, n === 1 ? raw.replace(/^\uFEFF/, '') : raw];
    }
  } finally {
    rl.close();
  }
}

/**
 * Splits one CSV line. Double-quoted fields may contain commas and doubled quotes; fields span
 * one line only. Returns undefined for an unterminated quote.
 */
export function splitCsvLine(line: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (line[i] === '"') {
      let field = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) return undefined;
        field += line.slice(i, q);
        if (line[q + 1] === '"') {
          field += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      const comma = line.indexOf(',', i);
      out.push(field + line.slice(i, comma < 0 ? line.length : comma).trim());
      if (comma < 0) return out;
      i = comma + 1;
    } else {
      const comma = line.indexOf(',', i);
      out.push(line.slice(i, comma < 0 ? line.length : comma).trim());
      if (comma < 0) return out;
      i = comma + 1;
    }
  }
}

/** Parses a whole-number field ("3", "-1"); undefined for anything else. */
export function parseIntField(s: string): number | undefined {
  return /^[+-]?\d+$/.test(s.trim()) ? Number(s) : undefined;
}

/** One line of a file with where it lies: byte offset and length, its line break excluded. */
export interface LocatedLine {
  line: number;
  text: string;
  offset: number;
  length: number;
}

/**
 * Like readLines (1-based numbers, BOM and trailing CR removed), also giving each line's byte
 * range, so that a reader can later re-read one line without scanning the file again.
 */
export async function* readLocatedLines(file: string): AsyncGenerator<LocatedLine> {
  let line = 0;
  let base = 0; // file offset of pending[0]
  let pending: Buffer = Buffer.alloc(0);
  const located = (buf: Buffer, start: number, end: number): LocatedLine => {
    const stop = end > start && buf[end - 1] === 13 ? end - 1 : end;
    const text = buf.toString('utf8', start, stop);
    line++;
    return { line, text: line === 1 ? text.replace(/^\uFEFF/, '') : text, offset: base + start, length: stop - start };
  };
  for await (const chunk of createReadStream(file)) {
    const buf: Buffer = pending.length > 0 ? Buffer.concat([pending, chunk as Buffer]) : (chunk as Buffer);
    let start = 0;
    for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, start)) {
      yield located(buf, start, nl);
      start = nl + 1;
    }
    base += start;
    pending = buf.subarray(start);
  }
  if (pending.length > 0) yield located(pending, 0, pending.length);
}
