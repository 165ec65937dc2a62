/** `arbex serve`: the HTTP API, the WebSocket and the dashboard on one port, over one engine. */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../backends/index.js';
import { ROOT, readSettings } from '../env.js';
import { redact } from '../ingest/index.js';
import { loadFaceModel } from '../model/face-model.js';
import { createEngine } from '../pipeline/engine.js';
import { chooseFfmpeg } from '../ingest/ffmpeg.js';
import { createServer } from '../server/index.js';
import { checkExposure } from '../server/security.js';
import { JOB_ENGINE_MODULE, type JobEngineSpec } from '../server/job-engine.js';
import { createProcessRunner } from '../server/job-process.js';

const USAGE = `usage: arbex serve [options]

Serves the API (/api), the WebSocket (/ws), Prometheus metrics (/metrics) and the dashboard (/).

options:
  --port N         port to listen on (default: PORT or 8080; 0 = any free port)
  --host H         address to bind (default: HOST or 127.0.0.1)
  --weights DIR    model directory (default: ARBEX_WEIGHTS or weights/fer)
  --workers N      model worker threads (default: cores - 1, so detection keeps a core; 0 = in this thread)
  --max-upload MB  largest video upload in MiB (default: ARBEX_MAX_UPLOAD_MB or 512)
  --no-demo        do not start the looped demo stream (media/demo.mp4)
  --allowed-host H     also answer to Host name H (repeatable; adds to ARBEX_ALLOWED_HOSTS)
  --insecure-no-token  listen on a non-loopback --host without ARBEX_TOKEN all the same
  --nats URL       join a cluster through NATS JetStream (or ARBEX_NATS_URL) as
  --role R         gateway, worker or all (default), --capacity N streams per worker (docs/SCALING.md)

ARBEX_TOKEN, when set, is required by the API and the WebSocket. Jobs and their labels are kept
in ARBEX_DATA_DIR (default data/server) across restarts; labelling runs in a separate process.
Limits (ARBEX_MAX_STREAMS, ARBEX_MAX_QUEUED_JOBS, ...) are listed in README.md, "Settings".`;

export const DEMO_VIDEO = path.join(ROOT, 'media', 'demo.mp4');

function intArg(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer ${min}-${max} (got "${value}")`);
  return n;
}

/** Runs until SIGINT or SIGTERM, then closes the server and the engine and resolves with 0. */
export async function run(argv: string[]): Promise<number> {
  // With a NATS address this process is a cluster gateway and/or worker (src/cluster).
  const cluster = await import('../cluster/cli.js');
  if (!argv.some((a) => a === '--help' || a === '-h') && cluster.clusterRequested(argv)) return cluster.run(argv);
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean', short: 'h' },
      port: { type: 'string' },
      host: { type: 'string' },
      weights: { type: 'string' },
      workers: { type: 'string' },
      'max-upload': { type: 'string' },
      'no-demo': { type: 'boolean' },
      'allowed-host': { type: 'string', multiple: true },
      'insecure-no-token': { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const env = readSettings();
  const settings = {
    ...env,
    port: intArg('port', values.port, 0, 65535) ?? env.port,
    host: values.host ?? env.host,
    weightsDir: path.resolve(values.weights ?? env.weightsDir),
    allowedHosts: [...env.allowedHosts, ...(values['allowed-host'] ?? [])],
    insecureNoToken: env.insecureNoToken || values['insecure-no-token'] === true,
  };
  // Before anything slow: a server that may not start says so at once.
  checkExposure(settings);
  // The main thread runs the decoders and the server; face detection runs in a detector worker
  // thread and the model in its own worker threads on the other cores.
  const workers = intArg('workers', values.workers, 0, 64) ?? Math.min(4, os.availableParallelism() - 1);
  const maxUploadMiB = intArg('max-upload', values['max-upload'], 1, 1 << 20);
  const limits = { ...settings.limits, ...(maxUploadMiB ? { maxUploadBytes: maxUploadMiB * 1024 * 1024 } : {}) };
  const ffmpeg = chooseFfmpeg({ override: settings.ffmpegPath });

  const backend = await initBackend(settings.backend);
  const model = await loadFaceModel(settings.weightsDir, { workers, engine: settings.engine });
  const engine = await createEngine({ model, settings: { ...settings, ffmpegPath: ffmpeg.path }, reconnect: { maxAttempts: limits.streamRetries } });
  const jobEngine: JobEngineSpec = { weightsDir: settings.weightsDir, backend: backend.name, engine: model.engine, workers, ffmpegPath: ffmpeg.path };
  const server = createServer({
    engine,
    settings,
    limits,
    ffmpeg,
    dataDir: settings.dataDir,
    jobRunner: createProcessRunner({ module: JOB_ENGINE_MODULE, spec: jobEngine }),
  });
  console.log(`arbex: ffmpeg ${ffmpeg.path} version ${ffmpeg.version} (${ffmpeg.reason})`);
  console.log(`arbex: jobs and labels in ${settings.dataDir}`);
  const { url } = await server.listen();
  console.log(`arbex: serving on ${url} (backend ${backend.name}, model ${settings.weightsDir}${settings.token ? ', token required' : ''})`);

  if (!values['no-demo']) {
    if (!existsSync(DEMO_VIDEO)) {
      console.log(`arbex: no demo stream (${DEMO_VIDEO} is missing)`);
    } else {
      try {
        engine.openStream(DEMO_VIDEO, { name: 'demo', loop: true });
      } catch (e) {
        // A media folder setting that excludes ./media refuses the demo: the server still runs.
        console.log(`arbex: no demo stream (${redact((e as Error).message)})`);
      }
    }
  }

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (s: NodeJS.Signals) => {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      resolve(s);
    };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  });
  console.log(`arbex: ${signal}, shutting down`);
  // A second signal means the user does not want to wait for a clean close.
  const force = () => process.exit(1);
  process.once('SIGINT', force).once('SIGTERM', force);
  await server.close();
  await engine.close();
  process.off('SIGINT', force).off('SIGTERM', force);
  return 0;
}
