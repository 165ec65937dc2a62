/**
 * Synthetic "videos": one identity (or two side by side) moving through expressions. Each
 * expression ramps up from neutral, holds, and ramps back down (sometimes cross-fading straight
 * into the next one) while the head drifts slowly. Frame labels follow dominantLabel: the strongest
 * expression, or Neutral while it is below the threshold (the start and end of every ramp).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { CLASSES, NUM_CLASSES } from './classes.js';
import { dominantLabel, type ExpressionState, type OtherVariant } from './expression.js';
import type { Identity } from './identity.js';
import type { FaceParams, Lighting, Pose } from './render.js';
import { createRng, randInt, shuffled, uniform, type Rng } from './rng.js';

export interface VideoScriptOptions {
  frames: number;
  /** Ramp length range, frames (25 fps: 6-16 frames is a quarter to two thirds of a second). */
  ramp: [number, number];
  /** Hold at peak, frames. */
  hold: [number, number];
  /** Neutral gap between expressions, frames (0 allows a direct cross-fade). */
  gap: [number, number];
  /** Peak intensity range. */
  peak: [number, number];
  /** Weight below which a frame is labelled Neutral. */
  neutralThreshold: number;
  /** Head motion amplitudes: roll degrees, yaw in [-1, 1], shift in canvas units. */
  roll: number;
  yaw: number;
  shift: number;
  /** Character scale inside the frame (below 1 leaves room to move). */
  scale: number;
  /** Maximum pixel noise sigma. */
  noise: number;
}

export const VIDEO_DEFAULTS: VideoScriptOptions = {
  frames: 250,
  ramp: [6, 16],
  hold: [12, 40],
  gap: [-6, 14],
  peak: [0.6, 1],
  neutralThreshold: 0.35,
  roll: 8,
  yaw: 0.35,
  shift: 4,
  scale: 0.85,
  noise: 5,
};

/** Everything needed to draw one face track of a video, frame by frame. */
export interface VideoTrack {
  identity: Identity;
  /** Per frame: expression weights (CLASSES order) and the label derived from them. */
  states: ExpressionState[];
  labels: number[];
  poses: Pose[];
  lighting: Lighting[];
  noise: number;
  noiseSeed: number;
}

/** Smooth 0 -> 1 step (cosine), so intensity has no kinks at the ends of a ramp. */
const ease = (t: number): number => 0.5 - 0.5 * Math.cos(Math.PI * Math.max(0, Math.min(1, t)));

const span = (rng: Rng, [lo, hi]: [number, number]): number => lo + randInt(rng, hi - lo + 1);

/**
 * Plans one face track: a sequence of expression events (classes drawn without repetition until
 * all eight have appeared), each with an up-ramp, hold and down-ramp, plus slow head motion.
 */
export function scriptTrack(identity: Identity, seed: number | string, options: Partial<VideoScriptOptions> = {}): VideoTrack {
  const o = { ...VIDEO_DEFAULTS, ...options };
  const rng = createRng('video', seed, identity.id);
  const weights = Array.from({ length: o.frames }, () => new Array<number>(NUM_CLASSES).fill(0));
  const variants: OtherVariant[] = new Array<OtherVariant>(o.frames).fill('tongue');
  let bag: number[] = [];
  let t = span(rng, [0, Math.max(0, o.gap[1])]);
  while (t < o.frames) {
    if (bag.length === 0) bag = shuffled(rng, CLASSES.map((_, i) => i).filter((i) => i !== 0));
    const cls = bag.pop() as number;
    const variant: OtherVariant = rng() < 0.5 ? 'tongue' : 'puff';
    const up = span(rng, o.ramp);
    const hold = span(rng, o.hold);
    const down = span(rng, o.ramp);
    const peak = uniform(rng, o.peak[0], o.peak[1]);
    for (let k = 0; k < up + hold + down; k++) {
      const f = t + k;
      if (f >= o.frames) break;
      const w = k < up ? ease((k + 1) / up) : k < up + hold ? 1 : ease((up + hold + down - k - 1) / down);
      weights[f][cls] = Math.max(weights[f][cls], peak * w);
      if (cls === CLASSES.indexOf('Other')) variants[f] = variant;
    }
    // A negative gap overlaps the next ramp with this one's decay: a direct cross-fade.
    t += up + hold + down + span(rng, o.gap);
  }
  const mirrorWink = rng() < 0.5;
  const states = weights.map((w, f) => ({ weights: w, otherVariant: variants[f], mirrorWink }));
  // Head motion: a sum of two slow sines per axis with random phases (periods of 2-8 s at 25 fps).
  const wave = () => {
    const [p1, p2] = [uniform(rng, 50, 200), uniform(rng, 50, 200)];
    const [a1, a2] = [uniform(rng, 0, 2 * Math.PI), uniform(rng, 0, 2 * Math.PI)];
    return (f: number) => 0.6 * Math.sin((2 * Math.PI * f) / p1 + a1) + 0.4 * Math.sin((2 * Math.PI * f) / p2 + a2);
  };
  const [roll, yaw, dx, dy] = [wave(), wave(), wave(), wave()];
  const baseLight: Lighting = { angle: uniform(rng, 0, 360), strength: uniform(rng, 0, 0.3), brightness: uniform(rng, 0.92, 1.08), contrast: uniform(rng, 0.9, 1.1) };
  const drift = wave();
  return {
    identity,
    states,
    labels: states.map((s) => dominantLabel(s, o.neutralThreshold)),
    poses: states.map((_, f) => ({ roll: o.roll * roll(f), yaw: o.yaw * yaw(f), scale: o.scale, dx: o.shift * dx(f), dy: o.shift * dy(f) })),
    lighting: states.map((_, f) => ({ ...baseLight, angle: baseLight.angle + 20 * drift(f) })),
    noise: uniform(rng, 0, o.noise),
    noiseSeed: Math.floor(rng() * 2 ** 31),
  };
}

/** Params of frame `f` of a track, as shown in the video. */
export function trackFrame(track: VideoTrack, f: number): FaceParams {
  return {
    identity: track.identity,
    expression: track.states[f],
    pose: track.poses[f],
    lighting: track.lighting[f],
    noise: track.noise,
    // Sensor noise changes every frame.
    noiseSeed: track.noiseSeed + f,
  };
}

/**
 * The same frame as an Aff-Wild2-style aligned crop: roll and shift undone, zoomed to the face
 * (yaw stays: alignment cannot undo a head turn).
 */
export function alignedFrame(track: VideoTrack, f: number): FaceParams {
  const p = trackFrame(track, f);
  return { ...p, pose: { roll: 0, yaw: p.pose.yaw, scale: 1.3, dx: 0, dy: 3 } };
}

export function ffmpegPath(explicit?: string): string {
  if (explicit) return explicit;
  return (createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string }).path;
}

export interface Mp4Writer {
  /** Queues one packed RGB frame (width*height*3 bytes); resolves when ffmpeg has taken it. */
  write(rgb: Buffer): Promise<void>;
  /** Closes the input and waits for ffmpeg to finish the file. */
  close(): Promise<void>;
}

/**
 * Starts ffmpeg encoding raw RGB frames from stdin to H.264/yuv420p MP4 at `fps`.
 * Single-threaded and bit-exact flags, so one input always gives the same file.
 * @example const w = openMp4('a.mp4', 256, 256); await w.write(rgb); await w.close();
 */
export function openMp4(file: string, width: number, height: number, fps = 25, ffmpeg?: string): Mp4Writer {
  if (width % 2 || height % 2) throw new Error(`H.264 yuv420p needs even frame sides (got ${width}x${height})`);
  const args = [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', String(fps), '-i', 'pipe:0',
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-pix_fmt', 'yuv420p', '-threads', '1',
    '-fflags', '+bitexact', '-flags:v', '+bitexact', '-movflags', '+faststart', file,
  ];
  const proc = spawn(ffmpegPath(ffmpeg), args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<void>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited with ${code}: ${stderr.trim()}`))));
  });
  // An early ffmpeg failure surfaces through `done`; keep EPIPE on stdin from crashing the process.
  proc.stdin.on('error', () => undefined);
  return {
    write: (rgb) =>
      new Promise<void>((resolve, reject) => {
        if (rgb.length !== width * height * 3) return reject(new Error(`frame has ${rgb.length} bytes, expected ${width * height * 3}`));
        if (proc.stdin.write(rgb)) resolve();
        else proc.stdin.once('drain', resolve);
        done.catch(reject);
      }),
    close: () => {
      proc.stdin.end();
      return done;
    },
  };
}
