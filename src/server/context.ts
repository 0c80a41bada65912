// What every route needs: the loaded models, the finished-job store, the limits, and the open event streams (ended
// at shutdown). Also turns a validated request body into a job, so the native and OpenAI routes share one path to
// the pipeline's request validation.

import { createHash } from 'node:crypto';
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
  fields: { count: string; preview: boolean; id?: string },
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
  return new Job(model.id, request, model.pipeline.samplerName(request.sampler), fields.preview, fields.id);
}

/**
 * The `Idempotency-Key` header (optional): 1-255 visible ASCII characters. The same key on the same model names the
 * same job id, so a client that resends a submission (a lost answer, a retry) gets the first job back; on Redis the
 * id is also the BullMQ job id, which dedupes across API servers.
 */
export function idempotentJobId(modelId: string, header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(header)) {
    throw badRequest('header Idempotency-Key must be one value of 1-255 visible ASCII characters', 'Idempotency-Key');
  }
  return `j_${createHash('sha256').update(`${modelId}\0${header}`).digest('base64url').slice(0, 24)}`;
}

/** Queues a job on its model and keeps it for later lookups; a full queue throws its 429 before anything is kept. */
export async function submitJob(ctx: ServerContext, model: ServedModel, job: Job): Promise<number> {
  if (ctx.stopping) throw new ApiError(503, 'the server is shutting down; no new jobs', 'server_error');
  // kept before the (possibly remote) submission, so a second request with the same idempotency key finds it
  ctx.store.add(job);
  try {
    return await model.queue.submit(job);
  } catch (e) {
    ctx.store.delete(job.id);
    throw e;
  }
}
