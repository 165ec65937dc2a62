/** `arbex synth`: writes the synthetic FERG-style benchmark, or the demo video. */
import { parseArgs } from 'node:util';
import { readSettings } from '../env.js';
import { generateDataset } from '../model/data/synth/index.js';
import { writeDemoVideo } from '../model/data/synth/demo.js';

const USAGE = `usage: arbex synth --out DIR [options]
       arbex synth --demo-video FILE [--frames N] [--seed N]

Writes seeded synthetic cartoon faces in 8 classes (Neutral, Anger, Disgust, Fear, Happiness,
Sadness, Surprise, Other): an image-folder layout per split (train/val/test, disjoint identities)
and an Aff-Wild2-style layout (videos, per-frame annotations, aligned crops) under DIR/affwild2.

options:
  --identities N        distinct identities (default 40)
  --images-per-class N  still images per class over all splits (default 200)
  --videos N            synthetic videos (default 8)
  --frames N            frames per video (default 250)
  --size N              side of stills and aligned crops (default 112)
  --seed N              seed (default 1)
  --noise KIND:PCT      label noise on the train split: symmetric:20 or flip:20 (default none)`;

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number >= 0 (got "${v}")`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      'demo-video': { type: 'string' },
      identities: { type: 'string' },
      'images-per-class': { type: 'string' },
      videos: { type: 'string' },
      frames: { type: 'string' },
      size: { type: 'string' },
      seed: { type: 'string' },
      noise: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const { ffmpegPath } = readSettings();
  if (values['demo-video']) {
    await writeDemoVideo(values['demo-video'], { frames: int('frames', values.frames), seed: int('seed', values.seed), ffmpegPath });
    return 0;
  }
  if (!values.out) {
    console.error(USAGE);
    return 2;
  }
  let noise;
  if (values.noise) {
    const m = /^(symmetric|flip):(\d+(?:\.\d+)?)$/.exec(values.noise);
    if (!m || Number(m[2]) > 100) throw new Error(`--noise must be symmetric:PCT or flip:PCT with PCT in 0..100 (got "${values.noise}")`);
    noise = { kind: m[1] as 'symmetric' | 'flip', percent: Number(m[2]) };
  }
  const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  let last = 0;
  const summary = await generateDataset({
    out: values.out,
    ffmpegPath,
    ...defined({
      identities: int('identities', values.identities),
      imagesPerClass: int('images-per-class', values['images-per-class']),
      videos: int('videos', values.videos),
      framesPerVideo: int('frames', values.frames),
      size: int('size', values.size),
      seed: int('seed', values.seed),
      noise,
    }),
    onProgress(done, total) {
      const now = Date.now();
      if (now - last > 2000 || done === total) {
        last = now;
        process.stderr.write(`synth: ${done}/${total}\n`);
      }
    },
  });
  console.log(JSON.stringify(summary, null, 2).slice(0, 2000));
  return 0;
}
