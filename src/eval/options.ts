/** Command-line values shared by `arbex label` and `arbex eval`, checked with clear messages. */
import { SMOOTHING, SmoothingSpec, smoothingWindow } from '../pipeline/smooth/index.js';

export function intOption(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min} (got "${value}")`);
  return n;
}

/**
 * --smoothing / --window / --alpha → a SmoothingSpec, with the defaults and limits of the HTTP API
 * (pipeline/smooth/spec.ts): the window is the trailing length or the centred half-width.
 */
export function smoothingOption(kind: string | undefined, window: string | undefined, alpha: string | undefined): SmoothingSpec {
  const k = kind ?? 'none';
  const kinds = SmoothingSpec.shape.kind.options;
  if (!(kinds as readonly string[]).includes(k)) throw new Error(`--smoothing must be one of ${kinds.join(', ')} (got "${k}")`);
  const spec: SmoothingSpec = { kind: k as SmoothingSpec['kind'] };
  if (k === 'centred' || k === 'trailing') spec.window = intOption('window', window, smoothingWindow(spec), k === 'centred' ? 0 : 1);
  if (k === 'ema') spec.alpha = alpha === undefined ? SMOOTHING.alpha : Number(alpha);
  const checked = SmoothingSpec.safeParse(spec);
  if (!checked.success) throw new Error(checked.error.issues.map((i) => `--${String(i.path[0] ?? 'smoothing')}: ${i.message} (got "${i.path[0] === 'alpha' ? alpha : window}")`).join('; '));
  return checked.data;
}

/** "0,5,10" → [0, 5, 10]. */
export function windowList(value: string): number[] {
  const list = value.split(',').map((s) => s.trim());
  return list.map((s) => intOption('sweep-smoothing', s, 0, 0));
}
