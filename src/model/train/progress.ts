/**
 * Training progress: a one-line bar with ETA redrawn in place on a TTY, plain log lines
 * otherwise (CI logs and `nohup` files stay readable).
 */

export interface ProgressOptions {
  /** Redraw in place (a terminal) or print lines. */
  tty: boolean;
  write: (text: string) => void;
  /** Seconds between plain lines when not a TTY. */
  every: number;
  now: () => number;
}

export interface Progress {
  /** `done` of `total` units finished; `info` is shown after the bar. */
  update(done: number, total: number, info: string): void;
  /** Ends the current bar line (before an epoch summary is printed). */
  end(): void;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}

/**
 * ETA extrapolates the rate since the first update (not since creation), so set-up time before
 * the first step does not distort it.
 *
 * @example
 * const bar = createProgress({ tty: process.stderr.isTTY === true });
 * bar.update(3, 10, 'loss 1.234');
 */
export function createProgress(options: Partial<ProgressOptions> = {}): Progress {
  const o: ProgressOptions = {
    tty: false,
    write: (t) => process.stderr.write(t),
    every: 30,
    now: () => performance.now() / 1000,
    ...options,
  };
  let start: { time: number; done: number } | undefined;
  let lastLine = -Infinity;
  let open = false;
  return {
    update(done, total, info) {
      const now = o.now();
      start ??= { time: now, done };
      const rate = (done - start.done) / (now - start.time);
      const eta = rate > 0 ? (total - done) / rate : NaN;
      const text = `${done}/${total} ETA ${formatDuration(eta)} ${info}`;
      if (o.tty) {
        const width = 24;
        const filled = Math.round((width * done) / Math.max(1, total));
        o.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K`);
        open = true;
      } else if (now - lastLine >= o.every || done === total) {
        o.write(`${text}\n`);
        lastLine = now;
      }
    },
    end() {
      if (open) o.write('\n');
      open = false;
      start = undefined;
      lastLine = -Infinity;
    },
  };
}
