/**
 * The parametric expression space. A face's expression is a set of class weights (0..1); each
 * class contributes its own displacement of the facial features from neutral, scaled by its
 * weight, so intensity blends continuously from the neutral face and two expressions can
 * cross-fade in a video.
 */
import { CLASSES, type ClassName } from './classes.js';

/** Feature displacements from the neutral face (0 everywhere = neutral). Units are per-feature. */
export interface Features {
  /** Whole-brow vertical shift (+ up), in units of ~3 canvas units. */
  browRaise: number;
  /** Inner-end lift relative to the outer end (+ worried "/\", - angry "\/"). */
  browInner: number;
  /** Extra arch of the brow curve (surprise). */
  browArch: number;
  /** Upper-lid opening (+ wide, - narrowed). */
  eyeOpen: number;
  /** Lower-lid raise (squint from cheeks). */
  eyeLower: number;
  /** Pupil scale change (- = pinpoint pupils of fear). */
  pupil: number;
  /** Vertical gaze (+ down). */
  gazeDown: number;
  /** Left/right eye closure for winks (1 = closed). */
  winkL: number;
  winkR: number;
  /** Mouth-corner lift (+ smile, - frown). */
  mouthCurve: number;
  /** Mouth opening (0 closed .. 1 wide open). */
  mouthOpen: number;
  /** Mouth width change (+ stretched). */
  mouthWidth: number;
  /** Rounding of the lips into an "O" (pulls the corners in and makes the opening oval). */
  mouthRound: number;
  /** Visible upper teeth (grin, fear grimace). */
  teeth: number;
  /** Clenched teeth, both rows meeting (anger). */
  clench: number;
  /** One-sided upper-lip raise (disgust sneer). */
  sneer: number;
  /** Wrinkles across the nose bridge and flared nostrils (disgust). */
  noseWrinkle: number;
  /** Puffed-out cheeks (Other). */
  cheekPuff: number;
  /** Tongue out (Other). */
  tongue: number;
}

export const FEATURE_NAMES = [
  'browRaise', 'browInner', 'browArch', 'eyeOpen', 'eyeLower', 'pupil', 'gazeDown', 'winkL', 'winkR',
  'mouthCurve', 'mouthOpen', 'mouthWidth', 'mouthRound', 'teeth', 'clench', 'sneer', 'noseWrinkle',
  'cheekPuff', 'tongue',
] as const satisfies readonly (keyof Features)[];

export const neutralFeatures = (): Features =>
  Object.fromEntries(FEATURE_NAMES.map((k) => [k, 0])) as unknown as Features;

/**
 * "Other" is Aff-Wild2's catch-all for non-basic faces. Here it is one of two playful faces,
 * chosen per sample: `tongue` (tongue out with a wink) or `puff` (puffed cheeks, pursed lips).
 */
export type OtherVariant = 'tongue' | 'puff';

type Delta = Partial<Features>;

const DELTAS: Record<Exclude<ClassName, 'Neutral' | 'Other'> | `Other:${OtherVariant}`, Delta> = {
  Anger: { browRaise: -1.2, browInner: -2.2, eyeOpen: -0.3, eyeLower: 0.3, mouthCurve: -0.7, mouthWidth: -0.05, mouthOpen: 0.32, clench: 1 },
  Disgust: { browRaise: -0.6, browInner: -0.6, eyeOpen: -0.25, eyeLower: 0.6, noseWrinkle: 1, sneer: 1, mouthCurve: -0.6, mouthOpen: 0.3, teeth: 1 },
  Fear: { browRaise: 1.1, browInner: 1.8, eyeOpen: 0.9, pupil: -0.5, mouthOpen: 0.55, mouthWidth: 0.35, mouthCurve: -0.6, teeth: 1 },
  Happiness: { browRaise: 0.25, eyeOpen: -0.2, eyeLower: 0.75, mouthCurve: 1.0, mouthOpen: 0.5, mouthWidth: 0.3, teeth: 1 },
  Sadness: { browRaise: -0.2, browInner: 2.0, eyeOpen: -0.55, gazeDown: 0.6, mouthCurve: -1.1, mouthWidth: -0.1 },
  Surprise: { browRaise: 2.0, browArch: 0.8, eyeOpen: 0.9, mouthOpen: 0.55, mouthRound: 1, mouthWidth: -0.15 },
  'Other:tongue': { winkL: 1, mouthCurve: 0.45, mouthOpen: 0.18, tongue: 1 },
  'Other:puff': { cheekPuff: 1, mouthRound: 1, mouthWidth: -0.2, browRaise: 0.4, eyeOpen: 0.15 },
};

export interface ExpressionState {
  /** Weight per class, in CLASSES order; the Neutral weight has no effect on the drawing. */
  weights: number[];
  otherVariant: OtherVariant;
  /** Wink on the right eye instead of the left (for the tongue variant). */
  mirrorWink: boolean;
}

/** A single expression at an intensity in [0, 1]. */
export function expression(label: ClassName, intensity = 1, otherVariant: OtherVariant = 'tongue', mirrorWink = false): ExpressionState {
  const weights = CLASSES.map((c) => (c === label ? Math.max(0, Math.min(1, intensity)) : 0));
  return { weights, otherVariant, mirrorWink };
}

/** Sum of the weighted class displacements. */
export function expressionFeatures(state: ExpressionState): Features {
  const f = neutralFeatures();
  CLASSES.forEach((c, i) => {
    const w = state.weights[i] ?? 0;
    if (c === 'Neutral' || w === 0) return;
    const delta = DELTAS[c === 'Other' ? (`Other:${state.otherVariant}` as const) : c];
    for (const [k, v] of Object.entries(delta) as [keyof Features, number][]) f[k] += w * v;
  });
  if (state.mirrorWink) [f.winkL, f.winkR] = [f.winkR, f.winkL];
  return f;
}

/**
 * The label a frame gets: the class with the largest weight, or Neutral when that weight is below
 * `threshold` (a face only just leaving neutral is still read as neutral by annotators).
 */
export function dominantLabel(state: ExpressionState, threshold = 0.35): number {
  let best = 0;
  let bestW = -1;
  state.weights.forEach((w, i) => {
    if (i !== 0 && w > bestW) [best, bestW] = [i, w];
  });
  return bestW >= threshold ? best : 0;
}
