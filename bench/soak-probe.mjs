// Preloaded into `arbex serve` by bench/soak.ts (node --import): every ARBEX_SOAK_SAMPLE_MS it
// prints one line `arbex-soak-probe {json}` with the process's memory and its main thread's
// event-loop delay over the last interval. Only in the main thread of the process it was
// preloaded into: worker threads and job processes (which inherit execArgv) stay quiet.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

if (isMainThread && process.env.ARBEX_SOAK_PROBE === '1') {
  delete process.env.ARBEX_SOAK_PROBE;
  const every = Number(process.env.ARBEX_SOAK_SAMPLE_MS ?? 10_000);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  setInterval(() => {
    const m = process.memoryUsage();
    const sample = {
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      loopP50Ms: ms(loop.percentile(50)),
      loopP95Ms: ms(loop.percentile(95)),
      loopMaxMs: ms(loop.max),
    };
    loop.reset();
    process.stdout.write(`arbex-soak-probe ${JSON.stringify(sample)}\n`);
  }, every).unref();
}
