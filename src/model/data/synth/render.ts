/**
 * Drawing: FaceParams -> SVG -> pixels. The face is built in a 100x100 canvas (head centred at
 * 50,50) and rasterised by sharp (librsvg), then lighting, contrast and noise jitter are applied to
 * the raw pixels. Same params and size give byte-identical output.
 */
import sharp from 'sharp';
import { expressionFeatures, type ExpressionState, type Features } from './expression.js';
import { shade, type Identity } from './identity.js';
import { createRng, normal } from './rng.js';

export interface Pose {
  /** In-plane rotation, degrees. */
  roll: number;
  /** Cheap yaw in [-1, 1] (about ±30°): features slide around the head, the far side narrows. */
  yaw: number;
  /** Size of the character relative to the canvas (1 = head about 62 % of the image height). */
  scale: number;
  /** Shift of the character in canvas units (the canvas is 100 wide). */
  dx: number;
  dy: number;
}

export interface Lighting {
  /** Direction the light comes from, degrees (0 = from the left, 90 = from the top). */
  angle: number;
  /** Strength of the light-to-shadow gradient laid over the image, 0..0.5. */
  strength: number;
  /** Pixel gain and contrast around mid-grey (1 = unchanged). */
  brightness: number;
  contrast: number;
}

export interface FaceParams {
  identity: Identity;
  expression: ExpressionState;
  pose: Pose;
  lighting: Lighting;
  /** Standard deviation of the Gaussian pixel noise, in 0..255 units. */
  noise: number;
  /** Seed of the pixel noise (part of the params so the same params give the same pixels). */
  noiseSeed: number;
}

export const DEFAULT_POSE: Pose = { roll: 0, yaw: 0, scale: 1, dx: 0, dy: 0 };
export const DEFAULT_LIGHTING: Lighting = { angle: 90, strength: 0, brightness: 1, contrast: 1 };

export type ImageFormat = 'png' | 'jpeg' | 'rgb';

export interface RenderOptions {
  /** 'rgb' = packed width*height*3 bytes; 'png' and 'jpeg' are encoded files. */
  format: ImageFormat;
  jpegQuality: number;
}

const RENDER_DEFAULTS: RenderOptions = { format: 'png', jpegQuality: 92 };

const f1 = (v: number): string => (Math.round(v * 100) / 100).toString();
const pt = (x: number, y: number): string => `${f1(x)} ${f1(y)}`;
const clamp = (v: number, lo: number, hi: number): number => Math.max(lo, Math.min(hi, v));

/** Horizontal placement on a head turned by `yaw`: a point `u` units right of the face's midline. */
function yawMap(id: Identity, yaw: number) {
  const a = yaw * 0.5;
  const r = id.faceRx;
  const theta = (u: number) => Math.asin(clamp(u / r, -0.999, 0.999));
  return {
    x: (u: number) => 50 + r * Math.sin(theta(u) + a),
    /** Foreshortening of a feature's width at `u`. */
    w: (u: number) => clamp(Math.cos(theta(u) + a) / Math.cos(theta(u)), 0.05, 1.3),
  };
}

function headPath(id: Identity, puff: number): string {
  const { faceRx: rx, faceRy: ry, jaw } = id;
  const cx = 50;
  const cy = 50;
  const cheek = rx + puff * 3.5;
  return [
    `M ${pt(cx - rx, cy)}`,
    `C ${pt(cx - rx, cy - ry * 0.56)} ${pt(cx - rx * 0.56, cy - ry)} ${pt(cx, cy - ry)}`,
    `C ${pt(cx + rx * 0.56, cy - ry)} ${pt(cx + rx, cy - ry * 0.56)} ${pt(cx + rx, cy)}`,
    `C ${pt(cx + cheek, cy + ry * 0.5)} ${pt(cx + rx * jaw, cy + ry * 0.95)} ${pt(cx, cy + ry)}`,
    `C ${pt(cx - rx * jaw, cy + ry * 0.95)} ${pt(cx - cheek, cy + ry * 0.5)} ${pt(cx - rx, cy)} Z`,
  ].join(' ');
}

function hairBack(id: Identity): string {
  const { faceRx: rx, faceRy: ry, hair } = id;
  const top = 50 - ry;
  if (id.hairStyle === 'long') {
    return `<path d="M ${pt(50 - rx - 4, 92)} L ${pt(50 - rx - 5, 45)} C ${pt(50 - rx - 6, top - 10)} ${pt(50 + rx + 6, top - 10)} ${pt(50 + rx + 5, 45)} L ${pt(50 + rx + 4, 92)} Z" fill="${hair}"/>`;
  }
  if (id.hairStyle === 'bob') {
    return `<path d="M ${pt(50 - rx - 4, 50 + ry * 0.55)} L ${pt(50 - rx - 5, 45)} C ${pt(50 - rx - 6, top - 10)} ${pt(50 + rx + 6, top - 10)} ${pt(50 + rx + 5, 45)} L ${pt(50 + rx + 4, 50 + ry * 0.55)} Z" fill="${hair}"/>`;
  }
  if (id.hairStyle === 'bun') return `<circle cx="50" cy="${f1(top - 3)}" r="8" fill="${hair}"/>`;
  return '';
}

function hairFront(id: Identity): string {
  const { faceRx: rx, faceRy: ry, hair } = id;
  const top = 50 - ry;
  const fringe = 50 - ry * 0.64;
  const side = 50 - ry * 0.2;
  const cap = (edge: string) =>
    `<path d="M ${pt(50 - rx - 1.5, side)} C ${pt(50 - rx - 2.5, top - 12)} ${pt(50 + rx + 2.5, top - 12)} ${pt(50 + rx + 1.5, side)} ${edge} Z" fill="${hair}"/>`;
  const straight = `L ${pt(50 + rx * 0.8, fringe)} Q ${pt(50, fringe + 2)} ${pt(50 - rx * 0.8, fringe)}`;
  switch (id.hairStyle) {
    case 'bald':
      return `<ellipse cx="${f1(50 - rx + 1)}" cy="${f1(side - 3)}" rx="2.2" ry="5" fill="${hair}"/><ellipse cx="${f1(50 + rx - 1)}" cy="${f1(side - 3)}" rx="2.2" ry="5" fill="${hair}"/>`;
    case 'sidepart':
      return cap(`L ${pt(50 + rx * 0.85, fringe - 1)} Q ${pt(50 + rx * 0.1, fringe - 4)} ${pt(50 - rx * 0.3, fringe + 3)} Q ${pt(50 - rx * 0.7, fringe + 1)} ${pt(50 - rx * 0.85, fringe)}`);
    case 'spiky': {
      const spikes: string[] = [];
      for (let i = 0; i <= 6; i++) {
        const x = 50 - rx + (2 * rx * i) / 6;
        const y = top + 3 - Math.sin((Math.PI * i) / 6) * 3;
        spikes.push(`L ${pt(x, y - 7)}`, `L ${pt(x + rx / 6, y)}`);
      }
      return `${cap(straight)}<path d="M ${pt(50 - rx - 1, top + 4)} ${spikes.join(' ')} L ${pt(50 + rx + 1, top + 4)} Z" fill="${hair}"/>`;
    }
    case 'curly': {
      const curls: string[] = [];
      for (let i = 0; i <= 8; i++) {
        const t = Math.PI * (1 - i / 8);
        curls.push(`<circle cx="${f1(50 + Math.cos(t) * (rx + 1))}" cy="${f1(50 - Math.sin(t) * (ry + 1) * 0.92 - 2)}" r="4.6" fill="${hair}"/>`);
      }
      return cap(straight) + curls.join('');
    }
    default:
      return cap(straight);
  }
}

function eye(id: Identity, f: Features, side: -1 | 1, mapX: ReturnType<typeof yawMap>, clipId: string): string {
  const u = side * id.eyeGap;
  const x = mapX.x(u);
  const y = 47;
  const w = id.eyeW * mapX.w(u);
  const wink = clamp(side < 0 ? f.winkL : f.winkR, 0, 1);
  const up = Math.max(0, id.eyeH * (1 + 0.85 * f.eyeOpen) * (1 - wink));
  const lo = Math.max(0, id.eyeH * 0.7 * (1 - 0.9 * f.eyeLower + 0.25 * Math.max(0, f.eyeOpen)) * (1 - wink));
  const ink = '#1b1410';
  const lids = [];
  if (up + lo < 1.1) {
    // Closed: a downward-open arc (smiling eyes or a wink), with a lash at the outer corner.
    const sag = wink > 0.5 ? 2.2 : 1.6;
    lids.push(`<path d="M ${pt(x - w, y + 0.5)} Q ${pt(x, y - sag * 2)} ${pt(x + w, y + 0.5)}" fill="none" stroke="${ink}" stroke-width="1.1" stroke-linecap="round"/>`);
    lids.push(`<path d="M ${pt(x + side * w, y + 0.5)} l ${pt(side * 1.5, -1)}" stroke="${ink}" stroke-width="0.8" stroke-linecap="round"/>`);
  } else {
    const almond = `M ${pt(x - w, y)} Q ${pt(x, y - 2 * up)} ${pt(x + w, y)} Q ${pt(x, y + 2 * lo)} ${pt(x - w, y)} Z`;
    const ir = id.eyeH * 0.95;
    const iy = y - up * 0.15 + f.gazeDown * 1.1;
    const pr = ir * 0.5 * clamp(1 + f.pupil, 0.3, 1.5);
    lids.push(`<clipPath id="${clipId}"><path d="${almond}"/></clipPath>`);
    lids.push(`<path d="${almond}" fill="#fbfbf7"/>`);
    lids.push(
      `<g clip-path="url(#${clipId})"><circle cx="${f1(x)}" cy="${f1(iy)}" r="${f1(ir)}" fill="${id.iris}"/><circle cx="${f1(x)}" cy="${f1(iy)}" r="${f1(pr)}" fill="#0a0a0a"/><circle cx="${f1(x + ir * 0.35)}" cy="${f1(iy - ir * 0.35)}" r="${f1(ir * 0.25)}" fill="#ffffff"/></g>`,
    );
    lids.push(`<path d="M ${pt(x - w, y)} Q ${pt(x, y - 2 * up)} ${pt(x + w, y)}" fill="none" stroke="${ink}" stroke-width="1.1" stroke-linecap="round"/>`);
    lids.push(`<path d="M ${pt(x - w, y)} Q ${pt(x, y + 2 * lo)} ${pt(x + w, y)}" fill="none" stroke="${ink}" stroke-width="0.45"/>`);
  }
  if (f.eyeLower > 0.3) {
    // Raised cheeks push a crease under the eye.
    const k = clamp(f.eyeLower - 0.3, 0, 0.7) / 0.7;
    lids.push(`<path d="M ${pt(x - w * 0.8, y + 3.2)} Q ${pt(x, y + 2.2)} ${pt(x + w * 0.8, y + 3.2)}" fill="none" stroke="${shade(id.skin, 0.7)}" stroke-width="0.6" opacity="${f1(k)}"/>`);
  }
  if (id.glasses) {
    lids.push(`<circle cx="${f1(x)}" cy="${f1(y)}" r="${f1(id.eyeW + 1.8)}" fill="none" stroke="#2a2a2a" stroke-width="0.9"/>`);
  }
  return lids.join('');
}

function brow(id: Identity, f: Features, side: -1 | 1, mapX: ReturnType<typeof yawMap>): string {
  const inner = side * (id.eyeGap - id.eyeW * 0.85);
  const outer = side * (id.eyeGap + id.eyeW * 1.1);
  const base = 47 - id.eyeH - 4.2 - f.browRaise * 2.4;
  const yIn = base - f.browInner * 2;
  const yOut = base - id.browTilt;
  // An angry brow is a straight slash; a worried or surprised one keeps its arch.
  const arch = Math.max(0, 1.4 + f.browArch * 1.8 + Math.min(0, f.browInner) * 0.6);
  const xi = mapX.x(inner);
  const xo = mapX.x(outer);
  // Pale hair would give invisible brows; darken it more (and for bald heads, whose tufts are small).
  const n = parseInt(id.hair.slice(1), 16);
  const luma = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
  const colour = id.hairStyle === 'bald' || luma > 150 ? shade(id.hair, 0.55) : shade(id.hair, 0.85);
  return `<path d="M ${pt(xi, yIn)} Q ${pt((xi + xo) / 2, (yIn + yOut) / 2 - arch)} ${pt(xo, yOut)}" fill="none" stroke="${colour}" stroke-width="${f1(id.browWeight)}" stroke-linecap="round"/>`;
}

function nose(id: Identity, f: Features, yaw: number): string {
  const x = 50 + id.faceRx * Math.sin(yaw * 0.5) * 1.15;
  const s = id.noseSize;
  const y = 58 - f.noseWrinkle * 0.8;
  const line = shade(id.skin, 0.62);
  const flare = 1 + 0.6 * f.noseWrinkle;
  const parts: string[] = [];
  if (id.noseStyle === 'button') {
    parts.push(`<ellipse cx="${f1(x)}" cy="${f1(y)}" rx="${f1(2.6 * s)}" ry="${f1(1.9 * s)}" fill="${shade(id.skin, 0.88)}"/>`);
  } else if (id.noseStyle === 'hook') {
    parts.push(`<path d="M ${pt(x - 0.5, y - 8 * s)} Q ${pt(x + 2.6 * s, y - 2)} ${pt(x + 1.5 * s, y + 1)} Q ${pt(x, y + 2)} ${pt(x - 1.5 * s, y + 0.8)}" fill="none" stroke="${line}" stroke-width="0.8" stroke-linecap="round"/>`);
  } else {
    parts.push(`<path d="M ${pt(x - 3 * s, y - 0.5)} Q ${pt(x - 3.4 * s, y + 1.8)} ${pt(x, y + 1.6)} Q ${pt(x + 3.4 * s, y + 1.8)} ${pt(x + 3 * s, y - 0.5)}" fill="none" stroke="${line}" stroke-width="0.8" stroke-linecap="round"/>`);
  }
  for (const side of [-1, 1]) {
    parts.push(`<ellipse cx="${f1(x + side * 1.3 * s * flare)}" cy="${f1(y + 0.9)}" rx="${f1(0.6 * flare)}" ry="0.45" fill="${shade(id.skin, 0.45)}"/>`);
  }
  if (f.noseWrinkle > 0.05) {
    const k = clamp(f.noseWrinkle, 0, 1);
    const wrinkle = shade(id.skin, 0.45);
    for (let i = 0; i < 3; i++) {
      const wy = 48 + i * 1.8;
      parts.push(`<path d="M ${pt(x - 2.6, wy + 0.7)} Q ${pt(x, wy - 0.7)} ${pt(x + 2.6, wy + 0.7)}" fill="none" stroke="${wrinkle}" stroke-width="0.8" opacity="${f1(k)}"/>`);
    }
    for (const side of [-1, 1]) {
      parts.push(`<path d="M ${pt(x + side * 3.8, y - 2)} q ${pt(side * 2.2, 2.2)} ${pt(side * 2.6, 5)}" fill="none" stroke="${wrinkle}" stroke-width="0.7" opacity="${f1(k)}"/>`);
    }
  }
  return parts.join('');
}

/** Cubic control height that puts a symmetric curve's midpoint at `mid` given corner height `corner`. */
const ctrlFor = (mid: number, corner: number): number => (mid - 0.25 * corner) / 0.75;

function mouth(id: Identity, f: Features, mapX: ReturnType<typeof yawMap>, clipId: string): string {
  const mx = mapX.x(0);
  const my = 67;
  const round = clamp(f.mouthRound, 0, 1);
  const w = id.mouthW * clamp(1 + 0.45 * f.mouthWidth, 0.3, 1.6) * (1 - 0.45 * round) * mapX.w(0);
  const hw = w / 2;
  const curve = f.mouthCurve * 3.2 + id.restCurve * 3;
  const open = clamp(f.mouthOpen, 0, 1.2) * 9;
  const sneer = clamp(f.sneer, 0, 1);
  const L = { x: mx - hw, y: my - curve - sneer * 1.8 };
  const R = { x: mx + hw, y: my - curve + sneer * 0.4 };
  const cornerY = (L.y + R.y) / 2;
  const upMid = my - open * 0.22 - sneer * 1.6;
  const loMid = my + open * (1 + 0.25 * round);
  // Round mouths put the controls over the corners, giving an oval; others are flatter.
  const cxIn = hw * (0.5 + 0.5 * round);
  const upC = ctrlFor(upMid, cornerY);
  const loC = ctrlFor(loMid, cornerY);
  const upperLip = `M ${pt(L.x, L.y)} C ${pt(mx - cxIn, upC)} ${pt(mx + cxIn, upC + sneer * 1.2)} ${pt(R.x, R.y)}`;
  const opening = `${upperLip} C ${pt(mx + cxIn, loC)} ${pt(mx - cxIn, loC)} ${pt(L.x, L.y)} Z`;
  const lipT = 0.5 + 2 * round;
  const lips = `M ${pt(L.x - 0.6, L.y)} C ${pt(mx - cxIn, upC - lipT * 1.3)} ${pt(mx + cxIn, upC - lipT * 1.3 + sneer * 1.2)} ${pt(R.x + 0.6, R.y)} C ${pt(mx + cxIn, loC + lipT * 1.6)} ${pt(mx - cxIn, loC + lipT * 1.6)} ${pt(L.x - 0.6, L.y)} Z`;
  const parts: string[] = [`<path d="${lips}" fill="${id.lip}"/>`];
  if (open > 0.8) {
    parts.push(`<clipPath id="${clipId}"><path d="${opening}"/></clipPath>`);
    parts.push(`<path d="${opening}" fill="#4a1518"/>`);
    const inside: string[] = [];
    inside.push(`<ellipse cx="${f1(mx)}" cy="${f1(loMid + 1)}" rx="${f1(hw * 0.7)}" ry="${f1(Math.max(1, open * 0.35))}" fill="#c8505e"/>`);
    const clench = clamp(f.clench, 0, 1);
    const teeth = clamp(f.teeth, 0, 1);
    if (clench > 0.2) {
      // Both rows meeting: a white band filling the opening with a bite line and gaps.
      inside.push(`<rect x="${f1(L.x)}" y="${f1(upMid - 3)}" width="${f1(w)}" height="${f1(open + 4)}" fill="#f7f4ea" opacity="${f1(clamp((clench - 0.2) / 0.4, 0, 1))}"/>`);
      inside.push(`<path d="M ${pt(L.x, (upMid + loMid) / 2)} L ${pt(R.x, (upMid + loMid) / 2)}" stroke="#8a7f78" stroke-width="0.5"/>`);
      for (let i = 1; i < 6; i++) inside.push(`<path d="M ${pt(L.x + (w * i) / 6, upMid - 2)} L ${pt(L.x + (w * i) / 6, loMid + 2)}" stroke="#b8aea5" stroke-width="0.35"/>`);
    } else if (teeth > 0.1) {
      inside.push(`<rect x="${f1(L.x)}" y="${f1(upMid - 3)}" width="${f1(w)}" height="${f1(3 + Math.max(1.3, open * 0.3) * teeth)}" fill="#f7f4ea"/>`);
    }
    parts.push(`<g clip-path="url(#${clipId})">${inside.join('')}</g>`);
    parts.push(`<path d="${opening}" fill="none" stroke="${shade(id.lip, 0.7)}" stroke-width="0.5"/>`);
  } else if (round > 0.3) {
    // Pursed lips: the seam shrinks to a small dark pucker.
    parts.push(`<ellipse cx="${f1(mx)}" cy="${f1(my + 0.3)}" rx="${f1(hw * 0.35)}" ry="0.8" fill="${shade(id.lip, 0.45)}"/>`);
  } else {
    parts.push(`<path d="${upperLip}" fill="none" stroke="${shade(id.lip, 0.55)}" stroke-width="0.8" stroke-linecap="round"/>`);
  }
  const tongue = clamp(f.tongue, 0, 1);
  if (tongue > 0.05) {
    const ty = loMid + lipT * 1.2;
    parts.push(`<path d="M ${pt(mx - 3, ty - 1)} L ${pt(mx - 3, ty + 2.6 * tongue)} Q ${pt(mx, ty + 6.5 * tongue)} ${pt(mx + 3, ty + 2.6 * tongue)} L ${pt(mx + 3, ty - 1)} Z" fill="#e0606f" stroke="#a8404c" stroke-width="0.4"/>`);
    parts.push(`<path d="M ${pt(mx, ty)} L ${pt(mx, ty + 3 * tongue)}" stroke="#a8404c" stroke-width="0.4"/>`);
  }
  return parts.join('');
}

function cheeks(id: Identity, f: Features, mapX: ReturnType<typeof yawMap>): string {
  const puff = clamp(f.cheekPuff, 0, 1);
  if (puff < 0.05) return '';
  return [-1, 1]
    .map((side) => {
      const x = mapX.x(side * (id.faceRx * 0.62));
      return `<ellipse cx="${f1(x)}" cy="62" rx="${f1(5.5 * puff)}" ry="${f1(4.5 * puff)}" fill="#ffffff" opacity="0.22"/><path d="M ${pt(x + side * 3.5, 58)} q ${pt(side * 2, 4)} 0 8" fill="none" stroke="${shade(id.skin, 0.75)}" stroke-width="0.6" opacity="${f1(puff)}"/>`;
    })
    .join('');
}

function body(id: Identity): string {
  const neckTop = 50 + id.faceRy * 0.55;
  const nw = id.faceRx * 0.42;
  const collar =
    id.collar === 'v'
      ? `<path d="M ${pt(50 - 8, 86)} L ${pt(50, 95)} L ${pt(50 + 8, 86)} Z" fill="${shade(id.skin, 0.9)}"/>`
      : `<path d="M ${pt(50 - 9, 86)} Q ${pt(50, 92)} ${pt(50 + 9, 86)}" fill="none" stroke="${shade(id.shirt, 0.7)}" stroke-width="1.2"/>`;
  return [
    `<rect x="${f1(50 - nw)}" y="${f1(neckTop)}" width="${f1(2 * nw)}" height="${f1(92 - neckTop)}" fill="${shade(id.skin, 0.86)}"/>`,
    `<path d="M 6 101 C 6 90 24 86.5 ${pt(50 - nw - 1, 85.5)} L ${pt(50 + nw + 1, 85.5)} C 76 86.5 94 90 94 101 Z" fill="${id.shirt}"/>`,
    collar,
  ].join('');
}

function ears(id: Identity, yaw: number): string {
  return [-1, 1]
    .map((side) => {
      const far = side * yaw > 0 ? 1 - Math.abs(yaw) * 0.9 : 1 + Math.abs(yaw) * 0.15;
      const rx = 3.2 * id.earSize * far;
      return `<ellipse cx="${f1(50 + side * (id.faceRx - 0.5) - yaw * 2)}" cy="50" rx="${f1(rx)}" ry="${f1(5.5 * id.earSize)}" fill="${id.skin}" stroke="${shade(id.skin, 0.65)}" stroke-width="0.6"/>`;
    })
    .join('');
}

/**
 * SVG elements of one character (background included) in a 100x100 canvas; `key` keeps clip-path
 * ids unique when several faces share one picture.
 */
export function faceElements(params: FaceParams, key = 'f'): string {
  const { identity: id, pose, lighting } = params;
  const f = expressionFeatures(params.expression);
  const mapX = yawMap(id, pose.yaw);
  const outline = shade(id.skin, 0.6);
  const character = [
    hairBack(id),
    body(id),
    ears(id, pose.yaw),
    `<path d="${headPath(id, clamp(f.cheekPuff, 0, 1))}" fill="${id.skin}" stroke="${outline}" stroke-width="0.8"/>`,
    // Soft 3D shading of the head (lit centre, darker rim): detectors trained on photos rely on it.
    `<radialGradient id="${key}hs" cx="0.5" cy="0.45" r="0.6"><stop offset="0.45" stop-color="#000" stop-opacity="0"/><stop offset="1" stop-color="#000" stop-opacity="0.28"/></radialGradient><path d="${headPath(id, clamp(f.cheekPuff, 0, 1))}" fill="url(#${key}hs)"/>`,
    hairFront(id),
    cheeks(id, f, mapX),
    brow(id, f, -1, mapX),
    brow(id, f, 1, mapX),
    eye(id, f, -1, mapX, `${key}el`),
    eye(id, f, 1, mapX, `${key}er`),
    id.glasses ? `<path d="M ${pt(mapX.x(-id.eyeGap + id.eyeW + 1.8), 46)} Q ${pt(mapX.x(0), 44.5)} ${pt(mapX.x(id.eyeGap - id.eyeW - 1.8), 46)}" fill="none" stroke="#2a2a2a" stroke-width="0.9"/>` : '',
    nose(id, f, pose.yaw),
    mouth(id, f, mapX, `${key}m`),
  ].join('');
  const transform = `translate(${f1(50 + pose.dx)} ${f1(50 + pose.dy)}) rotate(${f1(pose.roll)}) scale(${f1(pose.scale)}) translate(-50 -50)`;
  const a = (lighting.angle * Math.PI) / 180;
  const gx = Math.cos(a) * 0.5;
  const gy = Math.sin(a) * 0.5;
  const light =
    lighting.strength > 0
      ? `<linearGradient id="${key}lg" x1="${f1(0.5 - gx)}" y1="${f1(0.5 - gy)}" x2="${f1(0.5 + gx)}" y2="${f1(0.5 + gy)}"><stop offset="0" stop-color="#ffffff" stop-opacity="${f1(lighting.strength * 0.8)}"/><stop offset="0.5" stop-color="#808080" stop-opacity="0"/><stop offset="1" stop-color="#000000" stop-opacity="${f1(lighting.strength)}"/></linearGradient><rect width="100" height="100" fill="url(#${key}lg)"/>`
      : '';
  return `<rect width="100" height="100" fill="${id.background}"/><g transform="${transform}">${character}</g>${light}`;
}

/** A complete SVG document of one or more faces side by side (each face gets a square cell). */
export function sceneSvg(faces: FaceParams[], cell: number): string {
  const body = faces
    .map((p, i) => `<svg x="${i * 100}" y="0" width="100" height="100" viewBox="0 0 100 100">${faceElements(p, `f${i}`)}</svg>`)
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${cell * faces.length}" height="${cell}" viewBox="0 0 ${100 * faces.length} 100">${body}</svg>`;
}

/** Brightness/contrast jitter and Gaussian noise, in place, seeded per face cell. */
function jitterPixels(rgb: Buffer, width: number, cell: number, faces: FaceParams[]): void {
  faces.forEach((p, i) => {
    const { brightness, contrast } = p.lighting;
    const rng = createRng('noise', p.noiseSeed);
    const sigma = p.noise;
    for (let y = 0; y < cell; y++) {
      for (let x = i * cell; x < (i + 1) * cell; x++) {
        const o = (y * width + x) * 3;
        for (let c = 0; c < 3; c++) {
          const v = ((rgb[o + c] - 128) * contrast + 128) * brightness + (sigma > 0 ? sigma * normal(rng) : 0);
          rgb[o + c] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
        }
      }
    }
  });
}

/**
 * Renders faces side by side (one square `cell` each) to raw RGB or an encoded image.
 * @example const png = await renderScene([left, right], 128, { format: 'png' });
 */
export async function renderScene(faces: FaceParams[], cell: number, options: Partial<RenderOptions> = {}): Promise<Buffer> {
  const opts = { ...RENDER_DEFAULTS, ...options };
  if (!Number.isInteger(cell) || cell < 16) throw new Error(`cell size must be an integer >= 16 (got ${cell})`);
  const width = cell * faces.length;
  const rgb = await sharp(Buffer.from(sceneSvg(faces, cell))).removeAlpha().raw().toBuffer();
  if (rgb.length !== width * cell * 3) throw new Error(`rasteriser returned ${rgb.length} bytes, expected ${width * cell * 3}`);
  jitterPixels(rgb, width, cell, faces);
  if (opts.format === 'rgb') return rgb;
  const img = sharp(rgb, { raw: { width, height: cell, channels: 3 } });
  return opts.format === 'png' ? img.png({ compressionLevel: 9, palette: false }).toBuffer() : img.jpeg({ quality: opts.jpegQuality }).toBuffer();
}

/**
 * Renders one face as a size x size image.
 * @example
 * const face = { identity: sampleIdentity(1, 0), expression: expression('Happiness', 0.8), pose: DEFAULT_POSE, lighting: DEFAULT_LIGHTING, noise: 0, noiseSeed: 0 };
 * const png = await renderFace(face, 112);
 */
export function renderFace(params: FaceParams, size: number, options: Partial<RenderOptions> = {}): Promise<Buffer> {
  return renderScene([params], size, options);
}
