/**
 * ARBEx head configuration: plain JSON data (it is stored next to the weights), validated once
 * with messages that name the field, the rule and the value received.
 */
import { configChecks, isObject, type Fail, type Json } from '../validate.js';

export interface HeadAttentionConfig {
  /** S: the embedding is cut into S tokens of D'/S values each; attention runs among them. */
  tokens: number;
  /** Attention heads; D'/S must be divisible by it. */
  heads: number;
}

export interface HeadEpsilonConfig {
  /** Inside the anchor distance sqrt(Σ(e − a)² + ε): keeps the gradient finite at e = a. */
  distance: number;
  /** In the denominator of t = (c_g t_g + c_a t_a) / (c_g + c_a + ε). */
  combine: number;
  /** Floor under p before log p (entropy and NLL); 0·log 0 then evaluates to 0. */
  log: number;
}

export interface HeadLossConfig {
  /** ε of label smoothing: the target is (1 − ε)·onehot(y) + ε/L. */
  labelSmoothing: number;
  /** Per-class weights of the class-distribution loss (see inverseFrequencyWeights); none = equal. */
  classWeights?: number[];
  lambdaCd: number;
  lambdaA: number;
  lambdaC: number;
  /**
   * Cap of the anchor loss, as a squared distance per anchor: each class pair contributes
   * min(||vec(A_i) − vec(A_i')||², K·anchorMargin), so anchors stop being pushed apart once paired
   * anchors are √anchorMargin apart (RMS). The spec's L_a is unbounded below without it.
   */
  anchorMargin: number;
}

export interface HeadConfig {
  /** Class names in output order (data, never hard-coded in the model). */
  classes: string[];
  /** D: width of the extractor's embedding. */
  embedDim: number;
  /** D': optional linear reduction e ← W e applied before everything else. */
  reduceDim?: number;
  /** Hidden widths of the MLP (each Linear → ReLU → BatchNorm → Dropout). */
  hidden: number[];
  dropout: number;
  /** T of l = softmax(z / T). */
  temperature: number;
  /** δ of the anchor similarity softmax(−d / δ); separate from T. */
  delta: number;
  /** K anchors per class. 0 turns the geometric correction off: then t = t_a. */
  anchorsPerClass: number;
  attention: HeadAttentionConfig;
  epsilon: HeadEpsilonConfig;
  loss: HeadLossConfig;
}

/** Everything except the data-dependent fields (classes, embedDim). */
export const HEAD_DEFAULTS = {
  // The authors' code (384, 192, 96) rather than the paper's 2 × 64: it is what produced the
  // published numbers on a 768-d embedding, and 64 units under Dropout(0.5) keep only ~32 alive.
  hidden: [384, 192, 96],
  dropout: 0.5,
  temperature: 1,
  delta: 1,
  // The paper's best anchor count (8–10); the K = 10 ablation is the reported one.
  anchorsPerClass: 10,
  attention: { tokens: 8, heads: 4 },
  epsilon: { distance: 1e-6, combine: 1e-8, log: 1e-12 },
  // anchorMargin 100 = (10 δ)²: once anchors of two classes are 10 δ apart the similarity softmax
  // already weighs the nearer one e^10 ≈ 2·10⁴ times more, so pushing further buys nothing.
  loss: { labelSmoothing: 0.11, lambdaCd: 1, lambdaA: 1, lambdaC: 1, anchorMargin: 100 },
} satisfies Omit<HeadConfig, 'classes' | 'embedDim'>;

/** The width everything after the optional reduction works in (D'). */
export function featureDim(config: HeadConfig): number {
  return config.reduceDim ?? config.embedDim;
}

const checks = configChecks('head config');
const fail: Fail = checks.fail;
const { int, positive, nonNegative } = checks;

function checkKeys(field: string, obj: Json, allowed: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw new Error(`head config: unknown key "${field}${key}"`);
  }
}

function fraction(field: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) fail(field, 'must be a number in [0, 1)', v);
  return v;
}

function section(field: string, v: unknown, allowed: readonly string[]): Json {
  if (v === undefined) return {};
  if (!isObject(v)) fail(field, 'must be an object', v);
  checkKeys(`${field}.`, v, allowed);
  return v;
}

/**
 * Checks a JSON head configuration and fills in the defaults.
 *
 * @example
 * const config = validateHeadConfig(JSON.parse(fs.readFileSync('head.json', 'utf8')));
 * // { classes: ['Neutral', ...], embedDim: 768, hidden: [384, 192, 96], anchorsPerClass: 10, ... }
 */
export function validateHeadConfig(json: unknown): HeadConfig {
  if (!isObject(json)) fail('', 'must be a JSON object', json);
  checkKeys('', json, [
    'classes', 'embedDim', 'reduceDim', 'hidden', 'dropout', 'temperature', 'delta', 'anchorsPerClass',
    'attention', 'epsilon', 'loss',
  ]);

  const classes = json.classes;
  if (!Array.isArray(classes) || classes.length < 2 || !classes.every((c) => typeof c === 'string' && c !== '')) {
    fail('classes', 'must be a list of at least 2 non-empty strings', classes);
  }
  const duplicate = classes.find((c, i) => classes.indexOf(c) !== i);
  if (duplicate !== undefined) fail('classes', `must be unique ("${duplicate}" repeats)`, classes);
  const L = classes.length;

  const embedDim = int('embedDim', json.embedDim, 1);
  const reduceDim = json.reduceDim === undefined ? undefined : int('reduceDim', json.reduceDim, 1);
  const width = reduceDim ?? embedDim;

  const hidden = json.hidden ?? HEAD_DEFAULTS.hidden;
  if (!Array.isArray(hidden)) fail('hidden', 'must be a list of integers >= 1', hidden);
  hidden.forEach((h, i) => int(`hidden[${i}]`, h, 1));

  const att = section('attention', json.attention, ['tokens', 'heads']);
  const tokens = int('attention.tokens', att.tokens ?? HEAD_DEFAULTS.attention.tokens, 1);
  const heads = int('attention.heads', att.heads ?? HEAD_DEFAULTS.attention.heads, 1);
  if (width % tokens !== 0) {
    fail('attention.tokens', `must divide the feature width ${width} (${reduceDim ? 'reduceDim' : 'embedDim'})`, tokens);
  }
  if ((width / tokens) % heads !== 0) fail('attention.heads', `must divide the token width ${width / tokens}`, heads);

  const eps = section('epsilon', json.epsilon, ['distance', 'combine', 'log']);
  const loss = section('loss', json.loss, [
    'labelSmoothing', 'classWeights', 'lambdaCd', 'lambdaA', 'lambdaC', 'anchorMargin',
  ]);

  let classWeights: number[] | undefined;
  if (loss.classWeights !== undefined) {
    const w = loss.classWeights;
    if (!Array.isArray(w) || w.length !== L) fail('loss.classWeights', `must be a list of ${L} numbers (one per class)`, w);
    classWeights = w.map((x, i) => positive(`loss.classWeights[${i}]`, x));
  }
  const d = HEAD_DEFAULTS.loss;

  return {
    classes: [...classes],
    embedDim,
    ...(reduceDim === undefined ? {} : { reduceDim }),
    hidden: [...hidden],
    dropout: fraction('dropout', json.dropout ?? HEAD_DEFAULTS.dropout),
    temperature: positive('temperature', json.temperature ?? HEAD_DEFAULTS.temperature),
    delta: positive('delta', json.delta ?? HEAD_DEFAULTS.delta),
    anchorsPerClass: int('anchorsPerClass', json.anchorsPerClass ?? HEAD_DEFAULTS.anchorsPerClass, 0),
    attention: { tokens, heads },
    epsilon: {
      distance: positive('epsilon.distance', eps.distance ?? HEAD_DEFAULTS.epsilon.distance),
      combine: positive('epsilon.combine', eps.combine ?? HEAD_DEFAULTS.epsilon.combine),
      log: positive('epsilon.log', eps.log ?? HEAD_DEFAULTS.epsilon.log),
    },
    loss: {
      labelSmoothing: fraction('loss.labelSmoothing', loss.labelSmoothing ?? d.labelSmoothing),
      ...(classWeights ? { classWeights } : {}),
      lambdaCd: nonNegative('loss.lambdaCd', loss.lambdaCd ?? d.lambdaCd),
      lambdaA: nonNegative('loss.lambdaA', loss.lambdaA ?? d.lambdaA),
      lambdaC: nonNegative('loss.lambdaC', loss.lambdaC ?? d.lambdaC),
      anchorMargin: positive('loss.anchorMargin', loss.anchorMargin ?? d.anchorMargin),
    },
  };
}

/**
 * Inverse-frequency class weights from training labels, scaled to mean 1 over the classes that
 * occur. A class with no samples gets weight 1 (it never contributes to the loss anyway).
 */
export function inverseFrequencyWeights(labels: ArrayLike<number>, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) throw new Error(`label ${y} at ${i} is not in 0..${numClasses - 1}`);
    counts[y]! += 1;
  }
  const present = counts.filter((c) => c > 0);
  const raw = counts.map((c) => (c > 0 ? 1 / c : 0));
  const mean = raw.reduce((a, b) => a + b, 0) / Math.max(1, present.length);
  return raw.map((w) => (w > 0 ? w / mean : 1));
}
