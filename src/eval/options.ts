/** Command-line values shared by `arbex label` and `arbex eval`, checked with clear messages. */
import type { SmoothingSpec } from '../pipeline/types.js';

const KINDS = ['none', 'ema', 'trailing', 'centred'] as const;

export function intOption(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min} (got "${value}")`);
  return n;
}

/**
 * --smoothing / --window / --alpha → a SmoothingSpec. The window is the trailing length or the
 * centred half-width (default 25 for centred, ABAW practice at 25-30 fps; 10 for trailing).
 */
export function smoothingOption(kind: string | undefined, window: string | undefined, alpha: string | undefined): SmoothingSpec {
  const k = kind ?? 'none';
  if (!(KINDS as readonly string[]).includes(k)) throw new Error(`--smoothing must be one of ${KINDS.join(', ')} (got "${k}")`);
  const spec: SmoothingSpec = { kind: k as SmoothingSpec['kind'] };
  if (k === 'centred' || k === 'trailing') spec.window = intOption('window', window, k === 'centred' ? 25 : 10, k === 'centred' ? 0 : 1);
  if (k === 'ema') {
    const a = alpha === undefined ? 0.3 : Number(alpha);
    if (!(a > 0 && a <= 1)) throw new Error(`--alpha must be in (0, 1] (got "${alpha}")`);
    spec.alpha = a;
  }
  return spec;
}

/** "0,5,10" → [0, 5, 10]. */
export function windowList(value: string): number[] {
  const list = value.split(',').map((s) => s.trim());
  return list.map((s) => intOption('sweep-smoothing', s, 0, 0));
}
