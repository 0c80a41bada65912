// What every route needs: the loaded models, the finished-job store, the limits, and the open event streams (ended
// at shutdown). Also turns a validated request body into a job, so the native and OpenAI routes share one path to
// the pipeline's request validation.

import type { ServerResponse } from 'node:http';
import { ASPECT_RATIO_BINS } from '../pipeline/resolution.js';
import { GenerateRequest, resolveRequest } from '../pipeline/request.js';
import { ApiError, badRequest } from './errors.js';
import { Job } from './job.js';
import { JobStore } from './job-store.js';
import { ServerLimits } from './schemas.js';
import { ServedModel } from './served-model.js';

export interface ServerContext {
  readonly models: ReadonlyMap<string, ServedModel>;
  readonly defaultModel: ServedModel;
  readonly store: JobStore;
  readonly limits: ServerLimits;
  readonly streams: Set<ServerResponse>;
  stopping: boolean;
}

export function findModel(ctx: ServerContext, id: string | undefined, field = 'model'): ServedModel {
  if (id === undefined) return ctx.defaultModel;
  const m = ctx.models.get(id);
  if (!m) throw new ApiError(404, `unknown model "${id}"; this server has ${[...ctx.models.keys()].map((k) => `"${k}"`).join(', ')}`, 'not_found_error', field);
  return m;
}

export function findJob(ctx: ServerContext, id: string): Job {
  const job = ctx.store.get(id);
  if (!job) throw new ApiError(404, `no job ${id} (unknown, or finished and no longer kept)`, 'not_found_error', 'id');
  return job;
}

const UINT64_LIMIT = 2n ** 64n;

export function parseSeed(seed: number | string | undefined, field = 'seed'): bigint | undefined {
  if (seed === undefined) return undefined;
  const value = BigInt(seed);
  if (value >= UINT64_LIMIT) throw badRequest(`body/${field} must be below 2^64, got ${seed}`, field);
  return value;
}

/** Checks a request against the model and the limits (fills the defaults, fixes the seed) and makes its job. */
export function createJob(
  ctx: ServerContext,
  model: ServedModel,
  req: GenerateRequest,
  fields: { count: string; preview: boolean },
): Job {
  const images = req.prompts.length * (req.numImagesPerPrompt ?? 1);
  if (images > ctx.limits.maxImages) {
    throw badRequest(
      `body/${fields.count}: ${req.prompts.length} prompts x ${req.numImagesPerPrompt ?? 1} images = ${images} images; this server makes at most ${ctx.limits.maxImages} per job`,
      fields.count,
    );
  }
  const request = resolveRequest(req, model.width);
  if (request.binning && !ASPECT_RATIO_BINS[model.pipeline.components.transformer.sampleSize]) {
    throw badRequest(`model "${model.id}" has no aspect-ratio bins for its size; send noBinning: true with multiples of 32`, 'noBinning');
  }
  return new Job(model.id, request, model.pipeline.samplerName(request.sampler), fields.preview);
}

/** Queues a job on its model and keeps it for later lookups; a full queue throws its 429 before anything is kept. */
export function submitJob(ctx: ServerContext, model: ServedModel, job: Job): number {
  if (ctx.stopping) throw new ApiError(503, 'the server is shutting down; no new jobs', 'server_error');
  const position = model.queue.submit(job);
  ctx.store.add(job);
  return position;
}
