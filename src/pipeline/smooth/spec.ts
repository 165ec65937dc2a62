/**
 * What smoothing a caller may ask for: the kinds, their defaults and their limits, defined once.
 * The smoother, the engine, the CLI options and the HTTP API all read them from here.
 *
 * @example
 *   const spec = SmoothingSpec.parse({ kind: 'centred' });   // checked against the limits
 *   const D = smoothingWindow(spec);                          // 25, the centred default
 */
import { z } from 'zod';

export const SMOOTHING = {
  /** EMA weight of the newest frame. */
  alpha: 0.3,
  /** Trailing window length in frames. */
  trailingWindow: 10,
  /** Centred half-width D in frames (ABAW practice at 25-30 fps). */
  centredWindow: 25,
  /** Largest window of either kind. */
  maxWindow: 1000,
} as const;

const alpha = z.number().gt(0).lte(1).describe(`EMA weight of the newest frame, in (0, 1]; default ${SMOOTHING.alpha}`);
const window = z
  .number()
  .int()
  .min(0)
  .max(SMOOTHING.maxWindow)
  .describe(`trailing window (>= 1, default ${SMOOTHING.trailingWindow}) or centred half-width (>= 0, default ${SMOOTHING.centredWindow}), in frames`);

/** A trailing window of 0 frames would hold nothing; a centred half-width of 0 interpolates without averaging. */
const trailingNeedsAFrame = (spec: { kind: string; window?: number }, ctx: z.RefinementCtx) => {
  if (spec.kind === 'trailing' && spec.window === 0) ctx.addIssue({ code: 'custom', path: ['window'], message: 'a trailing window must be at least 1 frame' });
};

/** Live streams smooth causally; `centred` needs future frames and is offline only. */
export const LiveSmoothing = z.strictObject({ kind: z.enum(['none', 'ema', 'trailing']), alpha: alpha.optional(), window: window.optional() }).superRefine(trailingNeedsAFrame);
export const SmoothingSpec = z.strictObject({ kind: z.enum(['none', 'ema', 'trailing', 'centred']), alpha: alpha.optional(), window: window.optional() }).superRefine(trailingNeedsAFrame);

export type LiveSmoothing = z.infer<typeof LiveSmoothing>;
/** Smoothing of the per-track distributions. `centred` is offline only (labelling, evaluation). */
export type SmoothingSpec = z.infer<typeof SmoothingSpec>;

/** Live streams' smoothing when none is asked for. */
export const LIVE_SMOOTHING: LiveSmoothing = { kind: 'ema', alpha: SMOOTHING.alpha };

/** The window a spec means: its own, else the default of its kind. */
export function smoothingWindow(spec: Pick<SmoothingSpec, 'kind' | 'window'>): number {
  return spec.window ?? (spec.kind === 'centred' ? SMOOTHING.centredWindow : SMOOTHING.trailingWindow);
}
