/** What the cluster keeps in its key-value buckets and sends on its subjects. */
import type { JobInfo } from '../server/jobs.js';
import type { SmoothingSpec, StreamInfo, StreamState } from '../pipeline/types.js';

/** `<prefix>-streams`: one desired stream, written by a gateway, run by whichever worker holds its lease. */
export interface DesiredStream {
  id: string;
  source: string;
  name: string;
  fps?: number;
  smoothing?: SmoothingSpec;
  loop?: boolean;
  createdAt: string;
  /** Stopped (POST /api/streams/{id}/stop): no worker runs it; it stays listed until deleted. */
  stopped?: boolean;
}

/** `<prefix>-leases`: the worker that runs a stream; renewed by compare-and-set on the revision. */
export interface Lease {
  worker: string;
  since: string;
}

/** `<prefix>-workers`: one live worker, put again every heartbeat. */
export interface WorkerBeat {
  id: string;
  host: string;
  pid: number;
  /** Streams it may run at most. */
  capacity: number;
  streams: number;
  /** Jobs it is labelling now. */
  jobs: number;
  classes: string[];
  startedAt: string;
}

/** `<prefix>.state.<stream>`. */
export interface StateMessage {
  stream: string;
  state: StreamState;
  error?: string;
  worker: string;
}

/** `<prefix>.info.<stream>`. */
export type InfoMessage = StreamInfo & { worker: string };

/** `<prefix>-jobs`: a job, its request and where it runs. */
export interface ClusterJobRecord {
  info: JobInfo & { worker?: string; attempts?: number };
  request: {
    smoothing?: SmoothingSpec;
    detectEvery?: number;
    /** Object name of the input in `<prefix>-media`. */
    input: string;
    inputBytes: number;
  };
  /** Local time (ms) at which the running attempt started, on the worker. */
  startedMs?: number;
}
