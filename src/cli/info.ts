/** `arbex info`: which engine runs the model here, which ffmpeg decodes, and which settings are in force. */
import { parseArgs } from 'node:util';
import { initBackend } from '../backends/index.js';
import { chooseEngine } from '../backends/onnx.js';
import { readSettings } from '../env.js';
import { chooseFfmpeg } from '../ingest/ffmpeg.js';

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log('usage: arbex info\n\nPrints the tensor backend chosen on this machine, the engine of a cnn extractor (onnx or tfjs, and why), the ffmpeg that decodes (path, version, why) and the settings in force.');
    return;
  }
  const settings = readSettings();
  const backend = await initBackend(settings.backend);
  // The engine of a cnn extractor (weights/fer's); other extractors run on the tfjs backend.
  const engine = await chooseEngine(settings.engine, { log: false });
  const ffmpeg = chooseFfmpeg({ override: settings.ffmpegPath });
  console.log(JSON.stringify({ backend, engine, ffmpeg, settings: { ...settings, token: settings.token ? '(set)' : undefined } }, null, 2));
}
