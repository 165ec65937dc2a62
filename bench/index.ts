/**
 * Entry of `npm run bench -- <name>`: runs one benchmark by name, or all of them without a name.
 * Each benchmark is a module exporting `run(args): Promise<void>` that prints JSON lines to stdout;
 * args are the command-line words after the name. To add one, add a line to `benches`.
 */
interface Bench {
  run(args: string[]): Promise<void>;
}

const benches: Record<string, () => Promise<Bench>> = {
  'train-step': () => import('./train-step.js').then((m) => ({ run: () => m.run() })),
  extractor: () => import('./extractor.js'),
  engine: () => import('./engine.js'),
  pipeline: () => import('./pipeline.js'),
  accuracy: () => import('./accuracy.js'),
  server: () => import('./server.js'),
  peers: () => import('./peers.js'),
  lag: () => import('./lag.js'),
  cluster: () => import('./cluster.js'),
};

async function main(name: string | undefined, args: string[]): Promise<void> {
  if (name !== undefined && !(name in benches)) {
    throw new Error(`unknown benchmark "${name}"; known: ${Object.keys(benches).join(', ')}`);
  }
  for (const key of name === undefined ? Object.keys(benches) : [name]) await (await benches[key]()).run(args);
}

main(process.argv[2], process.argv.slice(3)).catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
