/**
 * Entry of `npm run bench -- <name>`: runs one benchmark by name, or all of them without a name.
 * Each benchmark is a module exporting `run(): Promise<void>` that prints JSON lines to stdout.
 * To add one, add a line to `benches`.
 */
interface Bench {
  run(): Promise<void>;
}

const benches: Record<string, () => Promise<Bench>> = {
  'train-step': () => import('./train-step.js'),
  extractor: () => import('./extractor.js'),
  pipeline: () => import('./pipeline.js'),
};

async function main(name: string | undefined): Promise<void> {
  if (name !== undefined && !(name in benches)) {
    throw new Error(`unknown benchmark "${name}"; known: ${Object.keys(benches).join(', ')}`);
  }
  for (const key of name === undefined ? Object.keys(benches) : [name]) await (await benches[key]()).run();
}

main(process.argv[2]).catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
