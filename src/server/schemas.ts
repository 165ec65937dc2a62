/**
 * The API's shapes as zod schemas: request bodies are validated with them and the OpenAPI
 * document and docs/API.md are derived from the same definitions.
 */
import { z } from 'zod';
import { LiveSmoothing, SmoothingSpec as OfflineSmoothing } from '../pipeline/smooth/index.js';

export const CreateStreamBody = z.strictObject({
  source: z.string().min(1).max(2048).describe('rtsp://, http(s)://, a device or a file inside a media folder'),
  name: z.string().min(1).max(100).optional(),
  fps: z.number().gt(0).max(120).optional().describe('output frame rate; default: the source rate'),
  loop: z.boolean().optional().describe('play a file source over and over, as if it were live'),
  smoothing: LiveSmoothing.optional(),
});
export type CreateStreamBody = z.infer<typeof CreateStreamBody>;

export const CreateJobBody = z.strictObject({
  path: z.string().min(1).max(4096).describe('a video file inside one of the configured media folders'),
  name: z.string().min(1).max(200).optional(),
  smoothing: OfflineSmoothing.optional(),
  detectEvery: z.number().int().min(1).max(100).optional().describe('run the face detector every N frames'),
});
export type CreateJobBody = z.infer<typeof CreateJobBody>;

/** Multipart uploads carry the same options as text fields next to the `file` part. */
export const UploadFields = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  smoothing: z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'smoothing must be JSON' });
        return z.NEVER;
      }
    })
    .pipe(OfflineSmoothing)
    .optional(),
  detectEvery: z.coerce.number().int().min(1).max(100).optional(),
});

export const ErrorBody = z.object({ error: z.string(), detail: z.string().optional() });

export const StreamState = z.enum(['connecting', 'live', 'stalled', 'reconnecting', 'ended', 'failed', 'stopped']);

export const StreamInfo = z.object({
  id: z.string(),
  name: z.string(),
  source: z.string(),
  state: StreamState,
  fpsIn: z.number(),
  fpsOut: z.number(),
  framesIn: z.number().int(),
  framesOut: z.number().int(),
  drops: z.number().int(),
  faces: z.number().int(),
  lastError: z.string().optional(),
  startedAt: z.string(),
});

export const JobState = z.enum(['queued', 'running', 'done', 'failed', 'cancelled']);

export const JobInfo = z.object({
  id: z.string(),
  name: z.string(),
  state: JobState,
  framesDone: z.number().int(),
  framesTotal: z.number().int().optional(),
  progress: z.number().min(0).max(1).optional().describe('framesDone / framesTotal when the total is known'),
  etaSeconds: z.number().optional(),
  error: z.string().optional(),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
});

const Box = z.object({ x: z.number(), y: z.number(), w: z.number(), h: z.number() });

export const FaceOutput = z.object({
  track: z.number().int(),
  box: Box,
  landmarks5: z.array(z.tuple([z.number(), z.number()])).length(5),
  primary: z.array(z.number()),
  corrected: z.array(z.number()),
  confidence: z.number(),
  label: z.string(),
  smoothed: z.array(z.number()),
  smoothedLabel: z.string(),
});

export const FrameOutput = z.object({
  stream: z.string(),
  frame: z.number().int(),
  ptsMs: z.number(),
  faces: z.number().int(),
  results: z.array(FaceOutput),
});

export const Health = z.object({ status: z.literal('ok'), uptimeSeconds: z.number() });

export const Info = z.object({
  name: z.literal('arbex'),
  classes: z.array(z.string()),
  auth: z.boolean().describe('whether a bearer token is required'),
  maxUploadBytes: z.number().int(),
  mediaDirs: z.array(z.string()),
  limits: z.record(z.string(), z.number()).describe('the caps in force (ARBEX_MAX_* settings)'),
  ffmpeg: z.object({ path: z.string(), version: z.string() }).describe('the ffmpeg that decodes'),
});

/** Messages a WebSocket client may send. */
export const ClientMessage = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('subscribe'), stream: z.string().min(1).describe('a stream id or *') }),
  z.strictObject({ type: z.literal('unsubscribe'), stream: z.string().min(1).describe('a stream id or *') }),
  z.strictObject({ type: z.literal('ping') }),
]);
export type ClientMessage = z.infer<typeof ClientMessage>;

/** Messages the server sends on the WebSocket. */
export const ServerMessage = z.discriminatedUnion('type', [
  FrameOutput.extend({ type: z.literal('prediction') }),
  z.object({ type: z.literal('stream'), stream: z.string(), state: StreamState, error: z.string().optional() }),
  z.object({ type: z.literal('error'), error: z.string(), detail: z.string().optional() }),
  z.object({ type: z.literal('pong') }),
  z.object({ type: z.literal('dropped'), stream: z.string(), count: z.number().int().min(1) }),
]);

/** Readable one-line summary of a zod error, for `detail`. */
export function describeIssues(error: { issues: readonly z.core.$ZodIssue[] }): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(body)'}: ${i.message}`).join('; ');
}
