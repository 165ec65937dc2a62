/**
 * Training curves as a PNG: two panels (training losses; validation accuracy and macro F1) drawn
 * as SVG and rasterised with sharp, so no plotting library is needed.
 */
import sharp from 'sharp';

export interface Series {
  name: string;
  color: string;
  /** [x, y] points; non-finite y values are skipped. */
  points: [number, number][];
}

export interface Panel {
  title: string;
  series: Series[];
  /** Fixed y range (e.g. [0, 1] for scores); default: the data's range. */
  yRange?: [number, number];
}

const W = 480;
const H = 300;
const M = { left: 52, right: 16, top: 30, bottom: 40 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function tick(v: number): string {
  return Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2);
}

function panelSvg(panel: Panel, dx: number): string {
  const pts = panel.series.flatMap((s) => s.points.filter(([, y]) => Number.isFinite(y)));
  const xs = pts.map(([x]) => x);
  const ys = pts.map(([, y]) => y);
  const x0 = xs.length ? Math.min(...xs) : 0;
  const x1 = xs.length ? Math.max(...xs) : 1;
  let [y0, y1] = panel.yRange ?? [ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1];
  if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number) => dx + M.left + (x1 > x0 ? ((x - x0) / (x1 - x0)) * pw : pw / 2);
  const sy = (y: number) => M.top + ph - ((y - y0) / (y1 - y0)) * ph;
  const parts: string[] = [
    `<text x="${dx + W / 2}" y="18" text-anchor="middle" font-size="14">${esc(panel.title)}</text>`,
    `<rect x="${dx + M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    parts.push(`<line x1="${dx + M.left}" x2="${dx + M.left + pw}" y1="${sy(y)}" y2="${sy(y)}" stroke="#ddd"/>`);
    parts.push(`<text x="${dx + M.left - 4}" y="${sy(y) + 4}" text-anchor="end" font-size="10">${tick(y)}</text>`);
  }
  parts.push(`<text x="${dx + M.left}" y="${H - 22}" font-size="10">${tick(x0)}</text>`);
  parts.push(`<text x="${dx + M.left + pw}" y="${H - 22}" text-anchor="end" font-size="10">${tick(x1)}</text>`);
  parts.push(`<text x="${dx + M.left + pw / 2}" y="${H - 22}" text-anchor="middle" font-size="10">epoch</text>`);
  panel.series.forEach((s, i) => {
    const p = s.points.filter(([, y]) => Number.isFinite(y));
    if (p.length > 1) parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of p) parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
    const lx = dx + M.left + 8 + i * 110;
    parts.push(`<rect x="${lx}" y="${H - 12}" width="10" height="4" fill="${s.color}"/>`);
    parts.push(`<text x="${lx + 14}" y="${H - 7}" font-size="10">${esc(s.name)}</text>`);
  });
  return parts.join('');
}

/** The SVG document of panels side by side. */
export function curvesSvg(panels: Panel[]): string {
  const body = panels.map((p, i) => panelSvg(p, i * W)).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W * panels.length}" height="${H}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${body}</svg>`;
}

/**
 * @example
 * await writeCurvesPng('runs/demo/curves.png', [{ title: 'loss', series: [{ name: 'train', color: '#c33', points: [[1, 2.1], [2, 1.7]] }] }]);
 */
export async function writeCurvesPng(file: string, panels: Panel[]): Promise<void> {
  await sharp(Buffer.from(curvesSvg(panels))).png().toFile(file);
}
