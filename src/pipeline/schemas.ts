/**
 * What the pipeline hands out, as zod schemas with the TypeScript types inferred from them: the
 * per-frame prediction and a stream's state. The server's messages (server/schemas.ts), its
 * OpenAPI document, the CLI's JSONL, the tests and the dashboard (web/app.js, through JSDoc)
 * all use these definitions; nothing writes the shapes again.
 *
 * @example
 *   const out: FrameOutput = FrameOutput.parse(JSON.parse(line));
 */
import { z } from 'zod';

export const Box = z.object({ x: z.number(), y: z.number(), w: z.number(), h: z.number() });
export type Box = z.infer<typeof Box>;

/** Five alignment points in image pixels: left eye, right eye, nose tip, left mouth, right mouth. */
export const Landmarks5 = z.array(z.tuple([z.number(), z.number()])).length(5);
export type Landmarks5 = z.infer<typeof Landmarks5>;

export const FaceOutput = z.object({
  track: z.number().int().describe('id of the face track, stable while the face is followed'),
  box: Box,
  landmarks5: Landmarks5,
  primary: z.array(z.number()).describe("the extractor's distribution over the classes"),
  corrected: z.array(z.number()).describe('the reliability-balanced distribution'),
  confidence: z.number().describe('confidence of the corrected distribution, in [0, 1]'),
  label: z.string().describe('argmax of corrected'),
  smoothed: z.array(z.number()).describe("corrected, smoothed over time per track"),
  smoothedLabel: z.string().describe('argmax of smoothed'),
});
export type FaceOutput = z.infer<typeof FaceOutput>;

/** Per frame: every face found (faces: 0 and an empty list when there is none). */
export const FrameOutput = z.object({
  stream: z.string(),
  frame: z.number().int(),
  ptsMs: z.number(),
  faces: z.number().int(),
  results: z.array(FaceOutput),
});
export type FrameOutput = z.infer<typeof FrameOutput>;

export const StreamState = z.enum(['connecting', 'live', 'stalled', 'reconnecting', 'ended', 'failed', 'stopped']);
export type StreamState = z.infer<typeof StreamState>;

export const StreamInfo = z.object({
  id: z.string(),
  name: z.string(),
  source: z.string(),
  state: StreamState,
  fpsIn: z.number().describe('frames decoded per second, over the last few seconds'),
  fpsOut: z.number().describe('frames predicted per second, over the last few seconds'),
  framesIn: z.number().int(),
  framesOut: z.number().int(),
  drops: z.number().int().describe('frames dropped because the pipeline was behind (live sources only)'),
  faces: z.number().int().describe('faces in the latest frame'),
  lastError: z.string().optional(),
  startedAt: z.string(),
});
export type StreamInfo = z.infer<typeof StreamInfo>;
