/**
 * A contact sheet: one row per class, one column per identity, for eyeballing the generator.
 * Run: node --import tsx src/model/data/synth/contact-sheet.ts [out.png] [seed] [identities] [cell] [jitter]
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import sharp, { type OverlayOptions } from 'sharp';
import { CLASSES } from './classes.js';
import { sampleIdentity } from './identity.js';
import { renderFace } from './render.js';
import { DEFAULT_JITTER, NO_JITTER, sampleFaceParams, type JitterOptions } from './sample.js';

export interface ContactSheetOptions {
  seed: number;
  identities: number;
  cell: number;
  jitter: JitterOptions;
}

const CONTACT_DEFAULTS: ContactSheetOptions = { seed: 1, identities: 8, cell: 96, jitter: NO_JITTER };

/**
 * Renders the sheet as a PNG (rows = CLASSES in order, columns = identities 0..n-1).
 * @example await writeFile('sheet.png', await contactSheet({ identities: 6 }));
 */
export async function contactSheet(options: Partial<ContactSheetOptions> = {}): Promise<Buffer> {
  const o = { ...CONTACT_DEFAULTS, ...options };
  const tiles: OverlayOptions[] = [];
  for (let r = 0; r < CLASSES.length; r++) {
    for (let c = 0; c < o.identities; c++) {
      const params = sampleFaceParams(o.seed, sampleIdentity(o.seed, c), CLASSES[r], c, o.jitter);
      tiles.push({ input: await renderFace(params, o.cell), left: c * o.cell, top: r * o.cell });
    }
  }
  return sharp({ create: { width: o.identities * o.cell, height: CLASSES.length * o.cell, channels: 3, background: '#ffffff' } })
    .composite(tiles)
    .png({ compressionLevel: 9, palette: true, quality: 90 })
    .toBuffer();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [out = 'docs/synth-contact-sheet.png', seed = '1', ids = '8', cell = '96', jitter = 'none'] = process.argv.slice(2);
  const png = await contactSheet({ seed: Number(seed), identities: Number(ids), cell: Number(cell), jitter: jitter === 'none' ? NO_JITTER : DEFAULT_JITTER });
  await writeFile(out, png);
  console.log(`${out}: ${png.length} bytes`);
}
