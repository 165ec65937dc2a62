/**
 * `arbex serve --nats URL --role gateway|worker|all`: the cluster roles of `arbex serve`
 * (src/cli/serve.ts hands over to `run` here when a NATS address is given, by flag or by
 * ARBEX_NATS_URL). Without one, `arbex serve` is the single server, unchanged.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../backends/index.js';
import { readSettings } from '../env.js';
import { chooseFfmpeg } from '../ingest/ffmpeg.js';
import { redact } from '../ingest/index.js';
import { loadFaceModel } from '../model/face-model.js';
import { createEngine } from '../pipeline/engine.js';
import type { Engine } from '../pipeline/types.js';
import { JOB_ENGINE_MODULE, type JobEngineSpec } from '../server/job-engine.js';
import { createProcessRunner } from '../server/job-process.js';
import { checkExposure } from '../server/security.js';
import { startAll, startGateway, startWorker, type Running } from './index.js';
import { parseRole, readClusterSettings } from './settings.js';

export const CLUSTER_USAGE = `cluster options (arbex serve --nats URL):
  --nats URL       NATS server(s), comma-separated (default: ARBEX_NATS_URL); without one, no cluster
  --role R         gateway (HTTP API, WebSocket, dashboard), worker (runs streams and jobs) or all
                   (both in one process; default: ARBEX_ROLE or all)
  --capacity N     streams this worker runs at most (default: ARBEX_MAX_STREAMS or 16)

NATS credentials come from ARBEX_NATS_USER / ARBEX_NATS_PASSWORD, ARBEX_NATS_TOKEN, ARBEX_NATS_NKEY
(seed or file), ARBEX_NATS_CREDS (.creds file), TLS from ARBEX_NATS_CA / _CERT / _KEY; the lease
time from ARBEX_CLUSTER_LEASE_MS (4000). docs/SCALING.md has the rest.`;

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  port: { type: 'string' },
  host: { type: 'string' },
  weights: { type: 'string' },
  workers: { type: 'string' },
  'max-upload': { type: 'string' },
  'no-demo': { type: 'boolean' },
  'allowed-host': { type: 'string', multiple: true },
  'insecure-no-token': { type: 'boolean' },
  nats: { type: 'string' },
  role: { type: 'string' },
  capacity: { type: 'string' },
} as const;

/** Whether `arbex serve` with these arguments (and this environment) runs as part of a cluster. */
export function clusterRequested(argv: string[], env: NodeJS.ProcessEnv = process.env): boolean {
  return argv.some((a) => /^--(nats|role|capacity)(=|$)/.test(a)) || Boolean(env.ARBEX_NATS_URL);
}

function intArg(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer ${min}-${max} (got "${value}")`);
  return n;
}

/** The class names of a weights folder, for a gateway that loads no model. */
function classesOf(weightsDir: string): string[] | undefined {
  try {
    const config = JSON.parse(readFileSync(path.join(weightsDir, 'config.json'), 'utf8')) as { classes?: unknown };
    return Array.isArray(config.classes) ? config.classes.map(String) : undefined;
  } catch {
    return undefined;
  }
}

/** Runs the role until SIGINT or SIGTERM, then leaves the cluster cleanly and resolves with 0. */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: OPTIONS });
  const env = readSettings();
  const cluster = readClusterSettings();
  cluster.natsUrl = values.nats ?? cluster.natsUrl;
  cluster.role = parseRole(values.role, cluster.role);
  if (!cluster.natsUrl) throw new Error('--role and --capacity need a NATS server: --nats URL or ARBEX_NATS_URL');
  const settings = {
    ...env,
    port: intArg('port', values.port, 0, 65535) ?? env.port,
    host: values.host ?? env.host,
    weightsDir: path.resolve(values.weights ?? env.weightsDir),
    allowedHosts: [...env.allowedHosts, ...(values['allowed-host'] ?? [])],
    insecureNoToken: env.insecureNoToken || values['insecure-no-token'] === true,
  };
  const role = cluster.role;
  const serves = role !== 'worker';
  if (serves) checkExposure(settings);
  const maxUploadMiB = intArg('max-upload', values['max-upload'], 1, 1 << 20);
  const limits = { ...settings.limits, ...(maxUploadMiB ? { maxUploadBytes: maxUploadMiB * 1024 * 1024 } : {}) };
  const capacity = intArg('capacity', values.capacity, 1, 10_000) ?? limits.maxStreams;
  const ffmpeg = chooseFfmpeg({ override: settings.ffmpegPath });
  const log = (line: string) => console.log(line);
  console.log(`arbex: cluster ${role} ${cluster.workerId}, NATS ${redact(cluster.natsUrl)}`);

  let engine: Engine | undefined;
  let jobRunner;
  if (role !== 'gateway') {
    const workers = intArg('workers', values.workers, 0, 64) ?? Math.min(4, os.availableParallelism() - 1);
    const backend = await initBackend(settings.backend);
    const model = await loadFaceModel(settings.weightsDir, { workers, engine: settings.engine });
    engine = await createEngine({ model, settings: { ...settings, ffmpegPath: ffmpeg.path }, reconnect: { maxAttempts: limits.streamRetries } });
    const spec: JobEngineSpec = { weightsDir: settings.weightsDir, backend: backend.name, engine: model.engine, workers, ffmpegPath: ffmpeg.path };
    jobRunner = createProcessRunner({ module: JOB_ENGINE_MODULE, spec });
  }
  const server = { settings, ffmpeg, dataDir: settings.dataDir, classes: classesOf(settings.weightsDir) };

  let running: Running<unknown>;
  if (role === 'worker') running = await startWorker({ cluster, limits, engine: engine!, jobRunner, capacity, log });
  else if (role === 'gateway') running = await startGateway({ cluster, limits, server, log });
  else running = await startAll({ cluster, limits, server, engine: engine!, jobRunner, capacity, log });

  if (serves) {
    const gateway = role === 'gateway' ? (running as Awaited<ReturnType<typeof startGateway>>).node : (running as Awaited<ReturnType<typeof startAll>>).node.gateway.node;
    const { url } = await gateway.server.listen();
    console.log(`arbex: serving on ${url} (cluster gateway${settings.token ? ', token required' : ''})`);
  } else {
    console.log(`arbex: worker ${cluster.workerId} running (capacity ${capacity} streams)`);
  }

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (s: NodeJS.Signals) => {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      resolve(s);
    };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  });
  console.log(`arbex: ${signal}, leaving the cluster`);
  const force = () => process.exit(1);
  process.once('SIGINT', force).once('SIGTERM', force);
  await running.close();
  await engine?.close();
  process.off('SIGINT', force).off('SIGTERM', force);
  return 0;
}
