/**
 * Evaluation reports as self-contained HTML pages (no scripts, no external files): the summary,
 * the confusion matrix drawn as inline SVG, and the per-class (and per-video) tables.
 */
import type { EvalReport } from './evaluate.js';
import type { ImagesReport } from './images.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const pct = (x: number) => `${(100 * x).toFixed(2)}`;

/**
 * Row-normalised confusion matrix: cell shade = share of the true class, text = count. Rows are
 * `classes`; columns are `columns` (default: the same), which may add e.g. a "no face" column.
 */
export function confusionSvg(confusion: readonly (readonly number[])[], classes: readonly string[], columns: readonly string[] = classes): string {
  const cell = 56;
  const left = 110;
  const top = 110;
  const n = classes.length;
  const m = columns.length;
  const size = { w: left + m * cell + 10, h: top + n * cell + 40 };
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${size.w}" height="${size.h}" viewBox="0 0 ${size.w} ${size.h}" font-family="sans-serif" font-size="12" role="img" aria-label="confusion matrix">`);
  confusion.forEach((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, p) => {
      const share = total > 0 ? count / total : 0;
      // Blue for the diagonal (right), red elsewhere (confusions); lightness from the share.
      const hue = t === p ? 215 : 5;
      const light = Math.round(97 - 55 * share);
      const x = left + p * cell;
      const y = top + t * cell;
      parts.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="hsl(${hue},70%,${light}%)" stroke="#fff"><title>${esc(`${classes[t]} → ${columns[p]}: ${count} (${pct(share)}% of ${classes[t]})`)}</title></rect>`);
      parts.push(`<text x="${x + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" fill="${light < 60 ? '#fff' : '#222'}">${count}</text>`);
    });
  });
  classes.forEach((c, i) => parts.push(`<text x="${left - 6}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end">${esc(c)}</text>`));
  columns.forEach((c, i) => {
    const x = left + i * cell + cell / 2;
    parts.push(`<text x="${x}" y="${top - 6}" text-anchor="start" transform="rotate(-45 ${x} ${top - 6})">${esc(c)}</text>`);
  });
  parts.push(`<text x="${left + (m * cell) / 2}" y="${top + n * cell + 28}" text-anchor="middle" font-weight="bold">predicted</text>`);
  parts.push(`<text x="14" y="${top + (n * cell) / 2}" text-anchor="middle" font-weight="bold" transform="rotate(-90 14 ${top + (n * cell) / 2})">true</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

/** A whole page around `body`, with the shared style and the title as heading. */
function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font-family:sans-serif;margin:2em;color:#222;max-width:60em}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th:first-child,td:first-child{text-align:left}.big{font-size:1.6em;font-weight:bold}
</style></head><body>
<h1>${esc(title)}</h1>
${body}</body></html>
`;
}

function perClassTable(perClass: EvalReport['perClass']): string {
  const rows = perClass.map((c) => `<tr><td>${esc(c.class)}</td><td>${pct(c.precision)}</td><td>${pct(c.recall)}</td><td>${pct(c.f1)}</td><td>${c.support}</td><td>${c.predicted}</td></tr>`);
  return `<table><tr><th>class</th><th>precision %</th><th>recall %</th><th>F1 %</th><th>support</th><th>predicted</th></tr>\n${rows.join('\n')}\n</table>`;
}

/** The whole page. */
export function reportHtml(report: EvalReport, title = 'ARBEx ABAW expression evaluation'): string {
  const f = report.frames;
  const smoothing = report.smoothing.kind === 'none' ? 'none' : `${report.smoothing.kind}${report.smoothing.window !== undefined ? ` (window ${report.smoothing.window})` : ''}${report.smoothing.alpha !== undefined ? ` (alpha ${report.smoothing.alpha})` : ''}`;
  const videos = report.videos
    .map((v) => `<tr><td>${esc(v.video)}</td><td>${v.frames}</td><td>${v.missing}</td><td>${pct(v.accuracy)}</td><td>${pct(v.macroF1)}</td></tr>`)
    .join('\n');
  const sweep = report.sweep
    ? `<h2>Centred smoothing sweep</h2><table><tr><th>±frames</th><th>macro F1 %</th><th>accuracy %</th></tr>${report.sweep.map((s) => `<tr><td>${s.window}</td><td>${pct(s.macroF1)}</td><td>${pct(s.accuracy)}</td></tr>`).join('')}</table>`
    : '';
  return page(
    title,
    `<p><span class="big">macro F1 ${pct(report.macroF1)}%</span> &nbsp; accuracy ${pct(report.accuracy)}% &nbsp; (ABAW: mean over all ${report.classes.length} classes; over the classes present only: ${pct(report.macroF1Present)}%)</p>
<p>Mode: ${report.mode}; smoothing: ${esc(smoothing)}; missing frames: ${report.missing}.<br>
Frames: ${f.evaluated} evaluated of ${f.annotated} annotated (${f.ignored} marked -1 not scored); ${f.missing} missing, ${f.interpolated} of them interpolated; ${f.unscored} unscored.</p>
<h2>Confusion matrix</h2>
${confusionSvg(report.confusion, report.classes)}
<h2>Per class</h2>
${perClassTable(report.perClass)}
<h2>Per video</h2>
<table><tr><th>video</th><th>frames</th><th>missing</th><th>accuracy %</th><th>macro F1 %</th></tr>
${videos}
</table>
${sweep}
`,
  );
}

/** The page of an `arbex eval --images` report. */
export function imagesReportHtml(report: ImagesReport, title = 'ARBEx expression evaluation on images'): string {
  const folders = report.folders.map((f) => `<tr><td>${esc(f.folder)}</td><td>${esc(f.class)}</td><td>${f.images}</td></tr>`).join('\n');
  const mode = report.mode === 'crops' ? 'each image a face crop, fed as is' : `largest face detected and cropped (border ${report.border} of the longer side added before detection)`;
  return page(
    title,
    `<p><span class="big">accuracy ${pct(report.accuracy)}%</span> &nbsp; macro F1 ${pct(report.macroF1)}% (over ${report.macroF1Classes.length} classes with images) &nbsp; accuracy on found faces ${pct(report.foundAccuracy)}%</p>
<p>${esc(report.dir)}: ${report.images} images, ${report.missing} without a face (counted as wrong); ${esc(mode)}.<br>
${report.seconds.toFixed(1)} s, ${report.imagesPerSecond.toFixed(1)} images/s.</p>
<h2>Confusion matrix</h2>
${confusionSvg(report.confusion, report.classes, report.columns)}
<h2>Per class</h2>
${perClassTable(report.perClass)}
<h2>Folders</h2>
<table><tr><th>folder</th><th>class</th><th>images</th></tr>
${folders}
</table>
`,
  );
}
