/**
 * The API's shapes as zod schemas, with the TypeScript types inferred from them: request bodies
 * and WebSocket messages are validated with them, the OpenAPI document and docs/API.md are
 * derived from them, and the dashboard (web/app.js) is type-checked against them. The per-frame
 * prediction and a stream's info are the pipeline's (pipeline/schemas.ts).
 */
import { z } from 'zod';
import { FrameOutput, StreamInfo, StreamState } from '../pipeline/schemas.js';
import { LiveSmoothing, SmoothingSpec as OfflineSmoothing } from '../pipeline/smooth/index.js';

export { FaceOutput, FrameOutput, StreamInfo, StreamState } from '../pipeline/schemas.js';

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

export const JobState = z.enum(['queued', 'running', 'done', 'failed', 'cancelled']);
export type JobState = z.infer<typeof JobState>;

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
export type JobInfo = z.infer<typeof JobInfo>;

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
  z.strictObject({ type: z.literal('subscribe'), stream: z.string().min(1).describe('a stream id, or * for every stream and the list of streams') }),
  z.strictObject({ type: z.literal('unsubscribe'), stream: z.string().min(1).describe('a stream id or *') }),
  z.strictObject({ type: z.literal('subscribe-jobs') }).describe('the list of jobs and every change of it'),
  z.strictObject({ type: z.literal('unsubscribe-jobs') }),
  z.strictObject({ type: z.literal('ping') }),
]);
export type ClientMessage = z.infer<typeof ClientMessage>;

/** Messages the server sends on the WebSocket. */
export const ServerMessage = z.discriminatedUnion('type', [
  FrameOutput.extend({ type: z.literal('prediction') }),
  z
    .object({ type: z.literal('stream'), stream: z.string(), state: StreamState, error: z.string().optional(), info: StreamInfo })
    .describe("a stream opened, changed state (error: why) or moved its counters (at most once a second); info is what GET /api/streams/{id} answers"),
  z.object({ type: z.literal('stream-removed'), stream: z.string() }).describe('a stream left the list (DELETE, or the oldest finished one beyond the cap)'),
  z.object({ type: z.literal('job'), job: JobInfo }).describe('a job was queued, started, moved on (at most twice a second) or ended'),
  z.object({ type: z.literal('job-removed'), job: z.string() }).describe('a job was deleted or pruned'),
  z.object({ type: z.literal('error'), error: z.string(), detail: z.string().optional() }),
  z.object({ type: z.literal('pong') }),
  z.object({ type: z.literal('dropped'), stream: z.string(), count: z.number().int().min(1) }),
]);
export type ServerMessage = z.infer<typeof ServerMessage>;

/** Readable one-line summary of a zod error, for `detail`. */
export function describeIssues(error: { issues: readonly z.core.$ZodIssue[] }): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(body)'}: ${i.message}`).join('; ');
}
