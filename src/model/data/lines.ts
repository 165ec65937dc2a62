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
