/**
 * `arbex <command> [options]`. Each command lives in its own module and is loaded only when
 * run, so `arbex --help` stays instant and one command's dependencies never slow another.
 */
import { readSettings } from '../env.js';

interface Command {
  summary: string;
  load: () => Promise<{ run: (argv: string[]) => Promise<number | void> }>;
}

const commands: Record<string, Command> = {
  serve: { summary: 'serve the HTTP API, WebSocket and dashboard', load: () => import('./serve.js') },
  label: { summary: 'label every frame of a video (or every video in a folder) to CSV / JSONL', load: () => import('./label.js') },
  eval: { summary: 'evaluate on Aff-Wild2 / ABAW expression annotations (macro F1, HTML report, submission)', load: () => import('./eval.js') },
  synth: { summary: 'write the synthetic FERG-style benchmark or the demo video', load: () => import('./synth.js') },
  info: { summary: 'show the tensor backend and the settings in force', load: () => import('./info.js') },
  train: { summary: 'train an ARBEx model (extractor + head) from a JSON config', load: () => import('./train.js') },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: arbex <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun "arbex <command> --help" for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 1;
  }
  const command = commands[name];
  if (!command) {
    console.error(`arbex: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  readSettings(); // fail early and clearly on a malformed setting
  const code = await (await command.load()).run(rest);
  return typeof code === 'number' ? code : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`arbex: ${(e as Error).message ?? e}`);
    process.exitCode = 1;
  },
);
