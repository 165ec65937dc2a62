/**
 * Progress of a long offline run on stderr: a redrawn bar with frames/s and ETA on a terminal,
 * plain lines (at most one every few seconds) when the output is a log or a pipe.
 */

export interface ProgressOptions {
  /** Where to draw; its isTTY decides the style. */
  stream: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  /** Minimum milliseconds between plain lines. */
  lineEveryMs: number;
  /** Clock, for tests. */
  now: () => number;
}

export interface Progress {
  update(done: number, total: number | undefined): void;
  /** Final line (and newline on a terminal). */
  finish(): void;
}

const DEFAULTS: ProgressOptions = { stream: process.stderr, lineEveryMs: 5000, now: () => Date.now() };

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** One status text: done/total, rate and ETA (exported for tests and other front ends). */
export function progressText(label: string, done: number, total: number | undefined, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? (1000 * done) / elapsedMs : 0;
  const eta = total !== undefined && rate > 0 ? clock((total - done) / rate) : '--:--';
  const of = total !== undefined ? `/${total}` : '';
  return `${label} ${done}${of} frames  ${rate.toFixed(1)} fps  ETA ${eta}`;
}

/**
 * @example
 * const bar = createProgress('clip.mp4');
 * for await (const out of engine.labelVideo(file, { onProgress: bar.update })) { ... }
 * bar.finish();
 */
export function createProgress(label: string, options: Partial<ProgressOptions> = {}): Progress {
  const { stream, lineEveryMs, now } = { ...DEFAULTS, ...options };
  const start = now();
  let last = { done: 0, total: undefined as number | undefined };
  let lastLine = -Infinity;
  let lastDraw = -Infinity;
  const tty = Boolean(stream.isTTY);
  const draw = (final: boolean) => {
    const text = progressText(label, last.done, last.total, now() - start);
    if (tty) {
      // Redrawing on every frame would cost more than the frame; ten times a second is enough.
      if (!final && now() - lastDraw < 100) return;
      lastDraw = now();
      const width = 24;
      const filled = last.total ? Math.min(width, Math.round((width * last.done) / last.total)) : 0;
      stream.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}\x1b[K${final ? '\n' : ''}`);
    } else if (final || now() - lastLine >= lineEveryMs) {
      lastLine = now();
      stream.write(`${text}\n`);
    }
  };
  return {
    update: (done, total) => {
      last = { done, total };
      draw(false);
    },
    finish: () => draw(true),
  };
}
