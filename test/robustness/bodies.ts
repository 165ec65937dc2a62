/**
 * Generated malformed HTTP bodies: JSON for the stream and job routes, multipart uploads for the
 * job route. Every one is wrong by construction (broken syntax, a refused value, a schema
 * violation, an oversized part, a file that is not a video...), so the only right answers are
 * 4xx. Sources never name a network host or a capture device: the suite stays on loopback.
 */
import { seededRandom } from '../../src/model/nn/params.js';

export interface Probe {
  kind: string;
  path: string;
  contentType?: string;
  body: Uint8Array<ArrayBuffer>;
}

/** The project's seeded generator (mulberry32), so that a failure can be replayed. */
export const rng = seededRandom;

const enc = new TextEncoder();

export function generateBodies(count: { json: number; multipart: number }, seed = 1): Probe[] {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
  const text = (n: number) => Array.from({ length: n }, () => pick('abcdefghijklmnopqrstuvwxyz0123456789 '.split(''))).join('');

  const refusedSources = ['concat:a.mp4|b.mp4', 'file:///etc/passwd', '/etc/passwd', '../../../etc/passwd', '-i', ' rtsp://x', 'subfile:,,start,0,end,0,,:/etc/passwd', 'data:video/mp4;base64,AAAA', 'pipe:0', 'gopher://x', 'x'.repeat(3000), '', '\u0000'];
  const refusedPaths = ['/etc/passwd', '../../etc/passwd', 'missing.mp4', '/dev/zero', '.', '..', '/proc/self/environ', 'x'.repeat(5000), '', 'a\u0000b'];
  const wrongValues: unknown[] = [null, true, 0, -1, 1e308, 'x', [], {}, [1, 2], { kind: 'wobbly' }, '\u202e'];

  const jsonCases: (() => Omit<Probe, 'kind'>)[] = [
    // Not JSON at all.
    () => ({ path: pick(['/api/streams', '/api/jobs']), contentType: 'application/json', body: bytes(int(2000)) }),
    // Truncated.
    () => {
      const s = JSON.stringify({ source: pick(refusedSources), name: text(20), smoothing: { kind: 'ema', alpha: 0.5 } });
      return { path: '/api/streams', contentType: 'application/json', body: enc.encode(s.slice(0, 1 + int(s.length - 2))) };
    },
    // Deeply nested, within and beyond the 64 KiB limit.
    () => {
      const depth = pick([100, 5000, 30_000, 70_000]);
      return { path: pick(['/api/streams', '/api/jobs']), contentType: 'application/json', body: enc.encode('['.repeat(depth) + ']'.repeat(depth)) };
    },
    // Over the JSON limit.
    () => ({ path: pick(['/api/streams', '/api/jobs']), contentType: 'application/json', body: enc.encode(JSON.stringify({ source: 'x', name: 'y'.repeat(65 * 1024 + int(100_000)) })) }),
    // Refused sources and paths.
    () => ({ path: '/api/streams', contentType: 'application/json', body: enc.encode(JSON.stringify({ source: pick(refusedSources) })) }),
    () => ({ path: '/api/jobs', contentType: 'application/json', body: enc.encode(JSON.stringify({ path: pick(refusedPaths) })) }),
    // Schema violations: wrong types, extra keys, out-of-range numbers.
    () => ({
      path: '/api/streams',
      contentType: 'application/json',
      body: enc.encode(JSON.stringify(pick([{ source: pick(wrongValues) }, { source: 'concat:x', extra: 1 }, { source: 'concat:x', fps: pick([-1, 0, 1e9, 'x']) }, { source: 'concat:x', smoothing: { kind: 'centred' } }, pick(wrongValues)]))),
    }),
    () => ({
      path: '/api/jobs',
      contentType: 'application/json',
      body: enc.encode(JSON.stringify(pick([{ path: pick(wrongValues) }, { path: 'missing.mp4', detectEvery: pick([0, 101, 1.5, 'x']) }, { path: 'missing.mp4', smoothing: pick(wrongValues) }, pick(wrongValues)]))),
    }),
    // Prototype pollution and duplicate keys.
    () => ({ path: pick(['/api/streams', '/api/jobs']), contentType: 'application/json', body: enc.encode(pick(['{"__proto__":{"admin":true},"source":5}', '{"constructor":{"prototype":{"x":1}},"path":1}', '{"source":"concat:x","source":"/etc/passwd"}', '{"path":"missing.mp4","path":"/etc/passwd"}'])) }),
    // Odd encodings: a BOM, UTF-16, invalid UTF-8, NUL bytes.
    () => ({ path: pick(['/api/streams', '/api/jobs']), contentType: pick(['application/json', 'application/json; charset=utf-16', 'application/JSON']), body: Uint8Array.from([0xef, 0xbb, 0xbf, ...enc.encode('{"source":"/etc/passwd"}')]) }),
    () => ({ path: pick(['/api/streams', '/api/jobs']), contentType: 'application/json', body: Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x00, 0x22, 0x3a, 0x31, 0x7d]) }),
    // A content type the job route does not take.
    () => ({ path: '/api/jobs', contentType: pick(['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'video/mp4', '']), body: enc.encode(text(int(500))) }),
  ];

  const B = () => `fuzz${int(1e9)}`;
  const part = (b: string, name: string, value: string, filename?: string) =>
    `--${b}\r\nContent-Disposition: form-data; name="${name}"${filename === undefined ? '' : `; filename="${filename}"`}\r\n\r\n${value}\r\n`;
  const notVideo = () => `${text(10 + int(3000))}\n`;
  const multipartCases: (() => Omit<Probe, 'kind' | 'path'>)[] = [
    // A well-formed upload of a file that is not a video: refused by the probe.
    () => {
      const b = B();
      return { contentType: `multipart/form-data; boundary=${b}`, body: enc.encode(part(b, 'file', notVideo(), pick(['a.mp4', '../../etc/passwd', 'x'.repeat(300), 'é.mkv', 'a\tb.avi'])) + `--${b}--\r\n`) };
    },
    // Truncated anywhere.
    () => {
      const b = B();
      const s = part(b, 'name', 'n') + part(b, 'file', notVideo(), 'a.mp4') + `--${b}--\r\n`;
      return { contentType: `multipart/form-data; boundary=${b}`, body: enc.encode(s.slice(0, int(s.length - 4))) };
    },
    // Junk after the closing boundary.
    () => {
      const b = B();
      const junk = enc.encode(pick([`--${b}`, '\r\n--', 'x', '-']).repeat(1 + int(200_000)));
      const head = enc.encode(part(b, 'file', notVideo(), 'a.mp4') + `--${b}--\r\n`);
      const body = new Uint8Array(head.length + junk.length);
      body.set(head);
      body.set(junk, head.length);
      return { contentType: `multipart/form-data; boundary=${b}`, body };
    },
    // No boundary, a boundary that is never used, one too long.
    () => ({ contentType: pick(['multipart/form-data', 'multipart/form-data; boundary=', `multipart/form-data; boundary=${'b'.repeat(80)}`, 'multipart/form-data; boundary="unclosed']), body: enc.encode(part('zz', 'file', 'x', 'a.mp4')) }),
    () => ({ contentType: `multipart/form-data; boundary=${B()}`, body: enc.encode(part('other', 'file', notVideo(), 'a.mp4') + '--other--\r\n') }),
    // Too many fields, a field too long, invalid field values.
    () => {
      const b = B();
      const fields = Array.from({ length: 17 + int(50) }, (_, i) => part(b, `f${i}`, 'v')).join('');
      return { contentType: `multipart/form-data; boundary=${b}`, body: enc.encode(fields + part(b, 'file', notVideo(), 'a.mp4') + `--${b}--\r\n`) };
    },
    () => {
      const b = B();
      return { contentType: `multipart/form-data; boundary=${b}`, body: enc.encode(part(b, 'name', 'n'.repeat(64 * 1024 + 1 + int(1000))) + part(b, 'file', 'x', 'a.mp4') + `--${b}--\r\n`) };
    },
    () => {
      const b = B();
      const bad = pick([part(b, 'smoothing', '{not json'), part(b, 'detectEvery', pick(['0', 'abc', '1e9', '-3'])), part(b, 'extra', 'x'), part(b, 'smoothing', '{"kind":"wobbly"}')]);
      return { contentType: `multipart/form-data; boundary=${b}`, body: enc.encode(bad + part(b, 'file', notVideo(), 'a.mp4') + `--${b}--\r\n`) };
    },
    // The file in the wrong field, two files, no file.
    () => {
      const b = B();
      const s = pick([part(b, 'video', 'x', 'a.mp4'), part(b, 'file', 'x', 'a.mp4') + part(b, 'file', 'y', 'b.mp4'), part(b, 'name', 'only a name')]);
      return { contentType: `multipart/form-data; boundary=${b}`, body: enc.encode(s + `--${b}--\r\n`) };
    },
    // Broken part headers: none, no disposition, huge, binary.
    () => {
      const b = B();
      const header = pick(['', 'Content-Type: video/mp4', `X-Junk: ${'h'.repeat(20_000)}`, String.fromCharCode(...bytes(200))]);
      return { contentType: `multipart/form-data; boundary=${b}`, body: enc.encode(`--${b}\r\n${header}\r\n\r\nDATA\r\n--${b}--\r\n`) };
    },
    // Random bytes.
    () => ({ contentType: `multipart/form-data; boundary=${B()}`, body: bytes(int(5000)) }),
  ];

  const probes: Probe[] = [];
  for (let i = 0; i < count.json; i++) {
    const c = i % jsonCases.length;
    probes.push({ kind: `json#${c}`, ...jsonCases[c]!() });
  }
  for (let i = 0; i < count.multipart; i++) {
    const c = i % multipartCases.length;
    probes.push({ kind: `multipart#${c}`, path: '/api/jobs', ...multipartCases[c]!() });
  }
  return probes;
}
