/** `arbex info`: which engine runs the model here, and which settings are in force. */
import { parseArgs } from 'node:util';
import { initBackend } from '../backends/index.js';
import { readSettings } from '../env.js';

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log('usage: arbex info\n\nPrints the tensor backend chosen on this machine and the settings in force.');
    return;
  }
  const settings = readSettings();
  const backend = await initBackend(settings.backend);
  console.log(JSON.stringify({ backend, settings: { ...settings, token: settings.token ? '(set)' : undefined } }, null, 2));
}
