/**
 * Extractor configurations and their named presets. Two kinds: the POSTER++-style extractor
 * (docs/MODEL-SPEC.md §1; `kind` absent or "poster"), where every size is data so the GPU-sized `full`
 * model and a CPU-real-time `lite` one share one code path, and the compact grey CNN
 * (`kind: "cnn"`, see cnn.ts) of the default real-face model. `validateExtractorConfig` rejects
 * inconsistent sizes with a message naming the field.
 */
import { validateCnnConfig, type CnnConfig } from './cnn.js';

type Triple = [number, number, number];

export interface PosterConfig {
  kind?: 'poster';
  /** Side of the square RGB input, values in [0, 1]. */
  inputSize: number;
  /** Both backbones run on the input resized to this side (a multiple of 16). */
  backboneSize: number;
  /** IR-50-style image stream: stem width, then three stages of bottleneck-IR blocks. */
  image: { stemWidth: number; widths: Triple; depths: Triple };
  /**
   * MobileFaceNet landmark stream. Tap widths must equal image.widths[0..1]; the third tap
   * (`outWidth`, after a 1x1 conv) is reduced by a conv3x3 to image.widths[2].
   * `expand` are the inner widths of the residual blocks per stage, `downExpand` those of the
   * three stride-2 blocks entering each stage.
   */
  landmark: {
    widths: Triple;
    depths: Triple;
    expand: Triple;
    downExpand: Triple;
    outWidth: number;
  };
  /** Window cross-attention per level (queries: landmark tap; keys/values: image tap). */
  fusion: { windows: Triple; heads: Triple; mlpRatio: number; layerScale: number; dropPath: Triple };
  /** Width of the pyramid tokens and of the ViT. */
  tokenDim: number;
  vit: { depth: number; heads: number; mlpDim: number; dropPath: number };
  /** Size D of the embedding; a linear reduction is added when it differs from tokenDim. */
  embedDim: number;
  /**
   * Frozen streams get no gradient and always use their BatchNorm moving statistics. Freeze a
   * stream only after loading pretrained weights into it: the presets train both, since a frozen
   * randomly initialised stream is noise.
   */
  frozen: { landmark: boolean; image: boolean };
}

const FULL: PosterConfig = {
  inputSize: 224,
  backboneSize: 112,
  image: { stemWidth: 64, widths: [64, 128, 256], depths: [3, 4, 14] },
  landmark: { widths: [64, 128, 128], depths: [4, 6, 2], expand: [128, 256, 256], downExpand: [128, 256, 512], outWidth: 512 },
  fusion: { windows: [28, 14, 7], heads: [2, 4, 8], mlpRatio: 4, layerScale: 1e-5, dropPath: [0, 0.125, 0.25] },
  tokenDim: 768,
  vit: { depth: 2, heads: 8, mlpDim: 3072, dropPath: 0 },
  embedDim: 768,
  frozen: { landmark: false, image: false },
};

/**
 * Same topology, shrunk for CPU real time: 112 crops, backbones at 48x48 (FER2013's resolution),
 * 27 tokens of 128, D = 128; level 1 attends in four 6x6 windows.
 */
const LITE: PosterConfig = {
  inputSize: 112,
  backboneSize: 48,
  image: { stemWidth: 16, widths: [16, 32, 64], depths: [1, 1, 2] },
  landmark: { widths: [16, 32, 32], depths: [1, 2, 1], expand: [32, 64, 64], downExpand: [32, 64, 128], outWidth: 128 },
  fusion: { windows: [6, 6, 3], heads: [1, 2, 4], mlpRatio: 4, layerScale: 1e-5, dropPath: [0, 0.05, 0.1] },
  tokenDim: 128,
  vit: { depth: 2, heads: 4, mlpDim: 256, dropPath: 0 },
  embedDim: 128,
  frozen: { landmark: false, image: false },
};

/** Smallest model exercising every part (incl. non-global windows and a reduction), for tests. */
const TINY: PosterConfig = {
  inputSize: 40,
  backboneSize: 32,
  image: { stemWidth: 8, widths: [8, 16, 16], depths: [1, 2, 1] },
  landmark: { widths: [8, 16, 16], depths: [1, 1, 1], expand: [16, 16, 32], downExpand: [16, 32, 32], outWidth: 32 },
  fusion: { windows: [4, 2, 2], heads: [2, 2, 4], mlpRatio: 2, layerScale: 1e-5, dropPath: [0, 0.1, 0.2] },
  tokenDim: 32,
  vit: { depth: 1, heads: 4, mlpDim: 64, dropPath: 0.1 },
  embedDim: 24,
  frozen: { landmark: false, image: false },
};

/**
 * The default real-face image stream: FER2013's 48x48 grey, a stem and four stages of basic
 * blocks (1.6 M parameters); trained by reference/torch/fer_cnn.py.
 */
const FER: CnnConfig = {
  kind: 'cnn',
  inputSize: 48,
  greyMean: 0.5,
  greyStd: 0.25,
  stemWidth: 24,
  widths: [24, 48, 96, 192],
  depths: [1, 2, 2, 2],
  embedDim: 192,
  frozen: { image: false },
  mirror: 'none',
};

export type ExtractorConfig = PosterConfig | CnnConfig;

export const PRESETS: { full: PosterConfig; lite: PosterConfig; tiny: PosterConfig; fer: CnnConfig } = { full: FULL, lite: LITE, tiny: TINY, fer: FER };
export type PresetName = keyof typeof PRESETS;

/** Deep-enough partial config for overrides (each nested object may be given in part). */
export type ExtractorOverrides<C = PosterConfig> = { [K in keyof C]?: C[K] extends unknown[] ? C[K] : C[K] extends object ? Partial<C[K]> : C[K] };

/**
 * A preset with overrides, validated.
 * @example extractorConfig('lite', { frozen: { image: true } })   // frozen-backbone mode
 */
export function extractorConfig<P extends PresetName>(preset: P, overrides: ExtractorOverrides<(typeof PRESETS)[P]> = {}): (typeof PRESETS)[P] {
  const base = PRESETS[preset];
  if (!base) throw new Error(`unknown extractor preset "${String(preset)}" (known: ${Object.keys(PRESETS).join(', ')})`);
  const merged = structuredClone(base) as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const cur = merged[key];
    const nested = typeof value === 'object' && !Array.isArray(value) && typeof cur === 'object' && cur !== null;
    merged[key] = nested ? { ...(cur as object), ...(value as object) } : value;
  }
  return validateExtractorConfig(merged) as (typeof PRESETS)[P];
}

function fail(field: string, msg: string): never {
  throw new Error(`invalid extractor config: ${field} ${msg}`);
}

function posInt(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(field, `must be a positive integer (got ${JSON.stringify(v)})`);
  return v;
}

function triple(v: unknown, field: string, check: (x: unknown, f: string) => number): Triple {
  if (!Array.isArray(v) || v.length !== 3) fail(field, `must be an array of 3 numbers (got ${JSON.stringify(v)})`);
  return [check(v[0], `${field}[0]`), check(v[1], `${field}[1]`), check(v[2], `${field}[2]`)];
}

function rate(v: unknown, field: string): number {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) fail(field, `must be a number in [0, 1) (got ${JSON.stringify(v)})`);
  return v;
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, 'must be an object');
  return v as Record<string, unknown>;
}

/** Checks types and every size constraint between the parts; returns a clean copy. */
export function validateExtractorConfig(value: unknown): ExtractorConfig {
  const c = obj(value, 'config');
  if (c.kind === 'cnn') return validateCnnConfig(c);
  if (c.kind !== undefined && c.kind !== 'poster') fail('kind', `must be "poster" or "cnn" (got ${JSON.stringify(c.kind)})`);
  return validatePosterConfig(c);
}

function validatePosterConfig(c: Record<string, unknown>): PosterConfig {
  const image = obj(c.image, 'image');
  const lm = obj(c.landmark, 'landmark');
  const fu = obj(c.fusion, 'fusion');
  const vit = obj(c.vit, 'vit');
  const frozen = obj(c.frozen, 'frozen');
  const cfg: PosterConfig = {
    inputSize: posInt(c.inputSize, 'inputSize'),
    backboneSize: posInt(c.backboneSize, 'backboneSize'),
    image: {
      stemWidth: posInt(image.stemWidth, 'image.stemWidth'),
      widths: triple(image.widths, 'image.widths', posInt),
      depths: triple(image.depths, 'image.depths', posInt),
    },
    landmark: {
      widths: triple(lm.widths, 'landmark.widths', posInt),
      depths: triple(lm.depths, 'landmark.depths', (x, f) => (x === 0 ? 0 : posInt(x, f))),
      expand: triple(lm.expand, 'landmark.expand', posInt),
      downExpand: triple(lm.downExpand, 'landmark.downExpand', posInt),
      outWidth: posInt(lm.outWidth, 'landmark.outWidth'),
    },
    fusion: {
      windows: triple(fu.windows, 'fusion.windows', posInt),
      heads: triple(fu.heads, 'fusion.heads', posInt),
      mlpRatio: posInt(fu.mlpRatio, 'fusion.mlpRatio'),
      layerScale: typeof fu.layerScale === 'number' && fu.layerScale > 0 ? fu.layerScale : fail('fusion.layerScale', 'must be a positive number'),
      dropPath: triple(fu.dropPath, 'fusion.dropPath', rate),
    },
    tokenDim: posInt(c.tokenDim, 'tokenDim'),
    vit: {
      depth: posInt(vit.depth, 'vit.depth'),
      heads: posInt(vit.heads, 'vit.heads'),
      mlpDim: posInt(vit.mlpDim, 'vit.mlpDim'),
      dropPath: rate(vit.dropPath, 'vit.dropPath'),
    },
    embedDim: posInt(c.embedDim, 'embedDim'),
    frozen: {
      landmark: typeof frozen.landmark === 'boolean' ? frozen.landmark : fail('frozen.landmark', 'must be a boolean'),
      image: typeof frozen.image === 'boolean' ? frozen.image : fail('frozen.image', 'must be a boolean'),
    },
  };
  const s = cfg.backboneSize;
  if (s % 16 !== 0) fail('backboneSize', `must be a multiple of 16 (four stride-2 stages; got ${s})`);
  if (cfg.inputSize < s) fail('inputSize', `must be at least backboneSize (${s}); got ${cfg.inputSize}`);
  const w = cfg.image.widths;
  if (cfg.landmark.widths[0] !== w[0] || cfg.landmark.widths[1] !== w[1]) {
    fail('landmark.widths', `[0] and [1] must equal image.widths[0] and [1] (${w[0]}, ${w[1]}): landmark taps are the queries`);
  }
  const sides = [s / 4, s / 8, s / 16];
  for (let i = 0; i < 3; i++) {
    const win = cfg.fusion.windows[i];
    if (sides[i] % win !== 0) fail(`fusion.windows[${i}]`, `(${win}) must divide the level's side ${sides[i]}`);
    if (w[i] % cfg.fusion.heads[i] !== 0) fail(`fusion.heads[${i}]`, `(${cfg.fusion.heads[i]}) must divide image.widths[${i}] (${w[i]})`);
  }
  if (cfg.tokenDim % cfg.vit.heads !== 0) fail('vit.heads', `(${cfg.vit.heads}) must divide tokenDim (${cfg.tokenDim})`);
  return cfg;
}

/** Tokens entering the ViT: three levels of (backboneSize/16)² each. */
export function tokenCount(cfg: PosterConfig): number {
  return 3 * (cfg.backboneSize / 16) ** 2;
}
