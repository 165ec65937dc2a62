/**
 * The bundled demo video that `npm start` loops: two synthetic people side by side moving through
 * expressions, so a newcomer sees two tracks and changing predictions with no camera.
 */
import { sampleIdentity } from './identity.js';
import { renderScene } from './render.js';
import { openMp4, scriptTrack, trackFrame } from './video.js';

export interface DemoVideoOptions {
  /** Length in frames at 25 fps. */
  frames: number;
  /** Side of each person's square cell, pixels. */
  cell: number;
  seed: number;
  ffmpegPath?: string;
}

/** Writes the demo MP4 (H.264, 25 fps). */
export async function writeDemoVideo(file: string, options: Partial<DemoVideoOptions> = {}): Promise<void> {
  const o: DemoVideoOptions = { frames: 500, cell: 240, seed: 7, ...options };
  const people = [sampleIdentity(o.seed, 0), sampleIdentity(o.seed, 1)];
  const tracks = people.map((who, i) => scriptTrack(who, `${o.seed}:demo:${i}`, { frames: o.frames }));
  const mp4 = openMp4(file, o.cell * people.length, o.cell, 25, o.ffmpegPath);
  try {
    for (let f = 0; f < o.frames; f++) await mp4.write(await renderScene(tracks.map((t) => trackFrame(t, f)), o.cell, { format: 'rgb' }));
  } finally {
    await mp4.close();
  }
}
