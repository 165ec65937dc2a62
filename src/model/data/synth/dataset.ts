/**
 * Writes a complete synthetic data set: an image-folder layout for still images and an
 * Aff-Wild2-style layout for videos, with identity-disjoint splits and optional label noise on
 * the training split (clean labels are always kept alongside).
 *
 * <out>/
 *   <split>/<class>/<identity>_<n>.<png|jpg>    still images; train files sit under their (noisy) label
 *   labels.csv                                  path,split,identity,clean,noisy for every image
 *   affwild2/videos/<video>.mp4                 H.264 yuv420p 25 fps
 *   affwild2/annotations/<track>.txt            header line, then one label index per frame (noisy on train)
 *   affwild2/annotations_clean/<track>.txt      the same without noise
 *   affwild2/cropped_aligned/<track>/00001.jpg  aligned face crops, 1-based like Aff-Wild2
 *   manifest.json                               options, splits, counts, measured noise
 * where <track> is <video>, or <video>_left / <video>_right for a two-person video.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CLASSES } from './classes.js';
import { sampleIdentity, type Identity } from './identity.js';
import { applyLabelNoise, NO_NOISE, type LabelNoise } from './noise.js';
import { renderFace, renderScene } from './render.js';
import { createRng, shuffled } from './rng.js';
import { DEFAULT_JITTER, sampleFaceParams, type JitterOptions } from './sample.js';
import { allocate, DEFAULT_SPLITS, SPLIT_NAMES, splitIdentities, type SplitFractions, type SplitName } from './splits.js';
import { alignedFrame, openMp4, scriptTrack, trackFrame, VIDEO_DEFAULTS, type VideoTrack } from './video.js';

export interface DatasetOptions {
  /** Output folder (created; existing files with the same names are overwritten). */
  out: string;
  /** Number of distinct identities, shared out over the splits. */
  identities: number;
  /** Still images per class over all splits (each split gets its share of identities' worth). */
  imagesPerClass: number;
  /** Number of synthetic videos. */
  videos: number;
  framesPerVideo: number;
  /** Side of still images and aligned crops, pixels. */
  size: number;
  /** Side of one person's square cell in the video frames, pixels (even). */
  videoSize: number;
  seed: number;
  /** Label noise, applied to the train split only. */
  noise: LabelNoise;
  splits: SplitFractions;
  imageFormat: 'png' | 'jpeg';
  /** Share of videos that show two identities side by side. */
  pairFraction: number;
  jitter: JitterOptions;
  /** Expression weight below which a video frame is labelled Neutral. */
  neutralThreshold: number;
  /** ffmpeg binary; defaults to @ffmpeg-installer/ffmpeg's. */
  ffmpegPath?: string;
  /** Called after each image or video frame, for progress output. */
  onProgress?: (done: number, total: number) => void;
}

export const DATASET_DEFAULTS: Omit<DatasetOptions, 'out'> = {
  identities: 40,
  imagesPerClass: 200,
  videos: 8,
  framesPerVideo: 250,
  size: 112,
  videoSize: 256,
  seed: 1,
  noise: NO_NOISE,
  splits: DEFAULT_SPLITS,
  imageFormat: 'png',
  pairFraction: 0.25,
  jitter: DEFAULT_JITTER,
  neutralThreshold: VIDEO_DEFAULTS.neutralThreshold,
};

export interface VideoEntry {
  name: string;
  split: SplitName;
  frames: number;
  /** One per person: annotation/crop folder name and identity. */
  tracks: { name: string; identity: string }[];
}

export interface DatasetSummary {
  out: string;
  classes: string[];
  identities: Record<SplitName, string[]>;
  /** Still images per split, and how many train labels the noise changed. */
  images: Record<SplitName, number>;
  videos: VideoEntry[];
  noise: LabelNoise & { imagesChanged: number; framesChanged: number; trainImages: number; trainFrames: number };
}

const HEADER = CLASSES.join(',');

const annotation = (labels: number[]): string => `${HEADER}\n${labels.join('\n')}\n`;

/** Images per class in a split: the split's share of identities times imagesPerClass. */
const perClassIn = (o: DatasetOptions, people: number): number => (people === 0 ? 0 : Math.round((o.imagesPerClass * people) / o.identities));

async function writeImages(o: DatasetOptions, ids: Record<SplitName, Identity[]>, tick: () => void) {
  const ext = o.imageFormat === 'png' ? 'png' : 'jpg';
  const rows = ['path,split,identity,clean,noisy'];
  const counts = {} as Record<SplitName, number>;
  let changed = 0;
  for (const split of SPLIT_NAMES) {
    const people = ids[split];
    const perClass = perClassIn(o, people.length);
    const items = CLASSES.flatMap((_, c) => Array.from({ length: perClass }, (_, k) => ({ c, k, who: people[k % people.length] })));
    const clean = items.map((it) => it.c);
    const noisy = split === 'train' ? applyLabelNoise(clean, o.noise, o.seed, 'images') : clean;
    for (const label of CLASSES) await mkdir(path.join(o.out, split, label), { recursive: true });
    for (let n = 0; n < items.length; n++) {
      const { c, k, who } = items[n];
      const params = sampleFaceParams(o.seed, who, CLASSES[c], k, o.jitter);
      const rel = path.posix.join(split, CLASSES[noisy[n]], `${who.id}_${n}.${ext}`);
      await writeFile(path.join(o.out, rel), await renderFace(params, o.size, { format: o.imageFormat }));
      rows.push(`${rel},${split},${who.id},${CLASSES[c]},${CLASSES[noisy[n]]}`);
      if (noisy[n] !== c) changed++;
      tick();
    }
    counts[split] = items.length;
  }
  await writeFile(path.join(o.out, 'labels.csv'), `${rows.join('\n')}\n`);
  return { counts, changed };
}

/** Which split each video belongs to and who is in it (pairs come from one split's identities). */
function planVideos(o: DatasetOptions, ids: Record<SplitName, Identity[]>): { split: SplitName; people: Identity[] }[] {
  const counts = allocate(o.videos, o.splits, false);
  const rng = createRng('video-plan', o.seed);
  const plan: { split: SplitName; people: Identity[] }[] = [];
  for (const split of SPLIT_NAMES) {
    const order = shuffled(rng, ids[split]);
    let at = 0;
    for (let v = 0; v < counts[split]; v++) {
      const pair = order.length >= 2 && rng() < o.pairFraction;
      const people = [order[at % order.length], ...(pair ? [order[(at + 1) % order.length]] : [])];
      at += people.length;
      plan.push({ split, people });
    }
  }
  return plan;
}

async function writeVideo(o: DatasetOptions, name: string, split: SplitName, people: Identity[], tick: () => void) {
  const root = path.join(o.out, 'affwild2');
  const tracks: VideoTrack[] = people.map((who) => scriptTrack(who, `${o.seed}:${name}`, { frames: o.framesPerVideo, neutralThreshold: o.neutralThreshold }));
  const trackNames = people.length === 1 ? [name] : [`${name}_left`, `${name}_right`];
  for (const dir of ['videos', 'annotations', 'annotations_clean']) await mkdir(path.join(root, dir), { recursive: true });
  for (const t of trackNames) await mkdir(path.join(root, 'cropped_aligned', t), { recursive: true });
  const mp4 = openMp4(path.join(root, 'videos', `${name}.mp4`), o.videoSize * people.length, o.videoSize, 25, o.ffmpegPath);
  try {
    for (let f = 0; f < o.framesPerVideo; f++) {
      await mp4.write(await renderScene(tracks.map((t) => trackFrame(t, f)), o.videoSize, { format: 'rgb' }));
      for (let i = 0; i < tracks.length; i++) {
        const crop = await renderFace(alignedFrame(tracks[i], f), o.size, { format: 'jpeg' });
        await writeFile(path.join(root, 'cropped_aligned', trackNames[i], `${String(f + 1).padStart(5, '0')}.jpg`), crop);
      }
      tick();
    }
  } finally {
    await mp4.close();
  }
  let changed = 0;
  let frames = 0;
  for (let i = 0; i < tracks.length; i++) {
    const clean = tracks[i].labels;
    const noisy = split === 'train' ? applyLabelNoise(clean, o.noise, o.seed, trackNames[i]) : clean;
    await writeFile(path.join(root, 'annotations', `${trackNames[i]}.txt`), annotation(noisy));
    await writeFile(path.join(root, 'annotations_clean', `${trackNames[i]}.txt`), annotation(clean));
    changed += noisy.filter((l, j) => l !== clean[j]).length;
    frames += clean.length;
  }
  return { changed, frames, tracks: trackNames.map((t, i) => ({ name: t, identity: people[i].id })) };
}

/**
 * Generates the whole data set and writes manifest.json; returns the same summary.
 * @example
 * await generateDataset({ out: 'data/synth', identities: 30, imagesPerClass: 100, videos: 4,
 *   framesPerVideo: 200, size: 112, seed: 7, noise: { kind: 'symmetric', percent: 20 } });
 */
export async function generateDataset(options: Partial<DatasetOptions> & { out: string }): Promise<DatasetSummary> {
  const o: DatasetOptions = { ...DATASET_DEFAULTS, ...options };
  if (o.videoSize % 2) throw new Error(`videoSize must be even for H.264 yuv420p (got ${o.videoSize})`);
  const split = splitIdentities(o.identities, o.splits, o.seed);
  const ids = Object.fromEntries(SPLIT_NAMES.map((s) => [s, split[s].map((i) => sampleIdentity(o.seed, i))])) as Record<SplitName, Identity[]>;
  await mkdir(o.out, { recursive: true });
  const plan = planVideos(o, ids);
  const imageTotal = SPLIT_NAMES.reduce((a, s) => a + perClassIn(o, ids[s].length), 0) * CLASSES.length;
  const total = imageTotal + plan.length * o.framesPerVideo;
  let done = 0;
  const tick = () => o.onProgress?.(++done, total);
  const images = await writeImages(o, ids, tick);
  const videos: VideoEntry[] = [];
  let framesChanged = 0;
  let trainFrames = 0;
  for (let v = 0; v < plan.length; v++) {
    const name = `synth_${String(v).padStart(3, '0')}`;
    const r = await writeVideo(o, name, plan[v].split, plan[v].people, tick);
    videos.push({ name, split: plan[v].split, frames: o.framesPerVideo, tracks: r.tracks });
    framesChanged += r.changed;
    if (plan[v].split === 'train') trainFrames += r.frames;
  }
  const summary: DatasetSummary = {
    out: o.out,
    classes: [...CLASSES],
    identities: Object.fromEntries(SPLIT_NAMES.map((s) => [s, ids[s].map((i) => i.id)])) as Record<SplitName, string[]>,
    images: images.counts,
    videos,
    noise: { ...o.noise, imagesChanged: images.changed, framesChanged, trainImages: images.counts.train, trainFrames },
  };
  const { onProgress: _skip, ...recorded } = o;
  await writeFile(path.join(o.out, 'manifest.json'), `${JSON.stringify({ options: recorded, ...summary }, null, 2)}\n`);
  return summary;
}
