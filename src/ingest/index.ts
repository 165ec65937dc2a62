/**
 * Video ingest: vet a source string, then decode it into RGB frames.
 *
 * @example
 * const settings = readSettings();
 * const src = openSource(parseSource(input, settings), { ffmpegPath: settings.ffmpegPath, maxSide: 480 });
 * for await (const frame of src.frames()) pipeline.push(frame);
 */
export { parseSource, SourceError } from './source.js';
export type { Source, SourceKind, FileSource, RtspSource, HttpSource, V4l2Source, ParseSourceOptions } from './source.js';
export { openSource } from './ingest.js';
export { isInsideMediaDirs, mediaCandidates, realMediaDirs } from './media.js';
export { createAddressPolicy, DEFAULT_NETWORK_POLICY } from './policy.js';
export type { AddressPolicy, NetworkPolicy } from './policy.js';
export { redact } from './redact.js';
export type { Frame, IngestOptions, IngestSource, IngestState, IngestStats, StateEvent, ReconnectOptions } from './ingest.js';
export type { SourceInfo } from './decode.js';
