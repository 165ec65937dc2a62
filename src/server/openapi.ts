/** The OpenAPI 3.1 document: paths written here, component schemas generated from schemas.ts. */
import { z } from 'zod';
import { ClientMessage, CreateJobBody, CreateStreamBody, ErrorBody, FrameOutput, Health, Info, JobInfo, ServerMessage, StreamInfo } from './schemas.js';

const components = { CreateStreamBody, CreateJobBody, StreamInfo, JobInfo, FrameOutput, ErrorBody, Health, Info, ClientMessage, ServerMessage };

const ref = (name: keyof typeof components) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const ok = (description: string, schema: object) => ({ description, ...json(schema) });
const err = (description: string) => ({ description, ...json(ref('ErrorBody')) });

const idParam = (what: string) => [{ name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: `${what} id` }];
const common = { '401': err('missing or bad bearer token'), '421': err('a Host this server does not answer to (ARBEX_ALLOWED_HOSTS)'), '500': err('internal error') };

function toSchema(schema: z.ZodType): object {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

let cached: object | undefined;

/** @example app.get('/api/openapi.json', (c) => c.json(openApiDocument())); */
export function openApiDocument(): object {
  cached ??= {
    openapi: '3.1.0',
    info: {
      title: 'arbex',
      version: '0.1.0',
      description: 'Facial-expression recognition on live streams and recorded videos. WebSocket API at /ws: see docs/API.md.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: Object.fromEntries(Object.entries(components).map(([k, v]) => [k, toSchema(v)])),
    },
    security: [{ bearer: [] }],
    paths: {
      '/api/health': { get: { summary: 'Liveness (never needs the token)', security: [], responses: { '200': ok('up', ref('Health')) } } },
      '/api/info': { get: { summary: 'Classes, limits and whether a token is required', responses: { '200': ok('info', ref('Info')), ...common } } },
      '/api/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' }, ...common } } },
      '/metrics': { get: { summary: 'Prometheus text exposition', responses: { '200': { description: 'text/plain; version=0.0.4' }, ...common } } },
      '/api/streams': {
        get: { summary: 'List streams', responses: { '200': ok('streams', { type: 'array', items: ref('StreamInfo') }), ...common } },
        post: {
          summary: 'Open a live or file stream',
          requestBody: { required: true, ...json(ref('CreateStreamBody')) },
          responses: {
            '201': ok('opened', { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] }),
            '400': err('bad body'),
            '413': err('body over 64 KiB'),
            '422': err('refused source'),
            '429': err('too many streams open'),
            ...common,
          },
        },
      },
      '/api/streams/{id}': {
        parameters: idParam('stream'),
        get: { summary: 'One stream', responses: { '200': ok('stream', ref('StreamInfo')), '404': err('unknown stream'), ...common } },
        delete: { summary: 'Stop a stream if it runs and take it off the list', responses: { '204': { description: 'deleted' }, '404': err('unknown stream'), ...common } },
      },
      '/api/streams/{id}/stop': {
        parameters: idParam('stream'),
        post: { summary: 'Stop a stream; it stays listed, stopped, until deleted', responses: { '200': ok('its final state', ref('StreamInfo')), '404': err('unknown stream'), ...common } },
      },
      '/api/streams/{id}/frame.jpg': {
        parameters: idParam('stream'),
        get: {
          summary: 'Latest decoded frame',
          responses: { '200': { description: 'JPEG', content: { 'image/jpeg': {} } }, '404': err('unknown stream or no frame yet'), ...common },
        },
      },
      '/api/jobs': {
        get: { summary: 'List labelling jobs', responses: { '200': ok('jobs', { type: 'array', items: ref('JobInfo') }), ...common } },
        post: {
          summary: 'Label a recorded video: upload it (multipart, field "file") or name a file in a media folder (JSON)',
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: ref('CreateJobBody') },
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  required: ['file'],
                  properties: {
                    file: { type: 'string', format: 'binary' },
                    name: { type: 'string' },
                    smoothing: { type: 'string', description: 'JSON, as in CreateJobBody.smoothing' },
                    detectEvery: { type: 'integer', minimum: 1, maximum: 100 },
                  },
                },
              },
            },
          },
          responses: {
            '201': ok('queued', ref('JobInfo')),
            '400': err('bad body'),
            '413': err('upload too large, JSON body over 64 KiB, or video over the duration, frame or frame-size limits'),
            '415': err('neither JSON nor multipart'),
            '422': err('path refused, or not a video'),
            '429': err('job queue full, or the queued uploads hold their byte budget'),
            '507': err('no space left to store the upload'),
            ...common,
          },
        },
      },
      '/api/jobs/{id}': {
        parameters: idParam('job'),
        get: { summary: 'Job state, progress and ETA', responses: { '200': ok('job', ref('JobInfo')), '404': err('unknown job'), ...common } },
        delete: { summary: 'Cancel a job and delete its files', responses: { '200': ok('final state', ref('JobInfo')), '404': err('unknown job'), ...common } },
      },
      '/api/jobs/{id}/labels.csv': {
        parameters: idParam('job'),
        get: {
          summary: 'Labels as CSV (frame,time_ms,track,x,y,w,h,label,confidence,p_*,primary_*,smoothed_label,s_*)',
          responses: { '200': { description: 'CSV', content: { 'text/csv': {} } }, '404': err('unknown job'), '409': err('job not done'), ...common },
        },
      },
      '/api/jobs/{id}/labels.jsonl': {
        parameters: idParam('job'),
        get: {
          summary: 'Labels as JSON lines, one FrameOutput per frame',
          responses: { '200': { description: 'JSONL', content: { 'application/x-ndjson': {} } }, '404': err('unknown job'), '409': err('job not done'), ...common },
        },
      },
    },
  };
  return cached;
}
