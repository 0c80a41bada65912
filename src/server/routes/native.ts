// The native API: submit a job (202), follow it (JSON, server-sent events), cancel it, fetch its images, list the
// models. ref: docs/server.md "Native API"

import type { FastifyInstance } from 'fastify';
import { ServerContext, createJob, findJob, findModel, idempotentJobId, parseSeed, submitJob } from '../context.js';
import { notFound } from '../errors.js';
import { imageTensorFromPng, maskTensorFromPng } from '../../pipeline/image-input.js';
import { GenerateBody, ImageParams, JobParams, generateBodySchema, imageParamsSchema, jobParamsSchema } from '../schemas.js';
import { followJobEvents } from './job-events.js';

const pngBytes = (b64: string) => Buffer.from(b64.replace(/^data:image\/png;base64,/, ''), 'base64');

export function registerNativeRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/api/models', async () => ({
    models: await Promise.all([...ctx.models.values()].map(async (m) => ({
      id: m.id,
      name: m.name,
      default: m === ctx.defaultModel,
      width: m.width,
      height: m.height,
      sampler: m.sampler,
      defaults: { steps: 20, guidance: 4.5, negative: '' },
      sizes: m.sizes,
      queue: await m.queue.stats(),
    }))),
    limits: ctx.limits,
  }));

  app.post<{ Body: GenerateBody }>('/api/generate', { schema: { body: generateBodySchema(ctx.limits) } }, async (request, reply) => {
    const b = request.body;
    const model = findModel(ctx, b.model);
    const id = idempotentJobId(model.id, request.headers['idempotency-key']);
    const earlier = id === undefined ? undefined : ctx.store.get(id);
    if (earlier) {
      const url = `/api/jobs/${earlier.id}`;
      const position = await model.queue.position(earlier);
      return reply
        .status(202)
        .header('Location', url)
        .header('Idempotent-Replayed', 'true')
        .send({ id: earlier.id, status: earlier.status, position, url, events: `${url}/events` });
    }
    const job = createJob(
      ctx,
      model,
      {
        prompts: typeof b.prompt === 'string' ? [b.prompt] : b.prompt,
        negativePrompt: b.negative,
        steps: b.steps,
        guidanceScale: b.guidance,
        seed: parseSeed(b.seed),
        width: b.width,
        height: b.height,
        binning: !b.noBinning,
        sampler: b.sampler,
        flowShift: b.flowShift,
        numImagesPerPrompt: b.numImages,
        maxSequenceLength: b.maxSequenceLength,
        image: b.image === undefined ? undefined : imageTensorFromPng(pngBytes(b.image), 'body/image'),
        strength: b.strength,
        mask: b.mask === undefined ? undefined : maskTensorFromPng(pngBytes(b.mask), 'body/mask'),
        controlImage: b.controlImage === undefined ? undefined : imageTensorFromPng(pngBytes(b.controlImage), 'body/controlImage'),
        controlScale: b.controlScale,
        pagScale: b.pagScale,
        pagLayers: b.pagLayers,
        pagAdaptiveScale: b.pagAdaptiveScale,
        maxTimesteps: b.maxTimesteps,
        intermediateTimesteps: b.intermediateTimesteps,
      },
      { count: 'numImages', preview: b.preview ?? true, id },
    );
    const position = await submitJob(ctx, model, job);
    const url = `/api/jobs/${job.id}`;
    return reply
      .status(202)
      .header('Location', url)
      .send({ id: job.id, status: job.status, position: position > 0 ? position : null, url, events: `${url}/events` });
  });

  app.get<{ Params: JobParams }>('/api/jobs/:id', { schema: { params: jobParamsSchema } }, async (request) => {
    const job = findJob(ctx, request.params.id);
    return job.toJSON(await ctx.models.get(job.modelId)!.queue.position(job));
  });

  app.get<{ Params: JobParams }>('/api/jobs/:id/events', { schema: { params: jobParamsSchema } }, async (request, reply) => {
    const job = findJob(ctx, request.params.id);
    await followJobEvents(ctx, job, request, reply);
  });

  app.delete<{ Params: JobParams }>('/api/jobs/:id', { schema: { params: jobParamsSchema } }, async (request) => {
    const job = findJob(ctx, request.params.id);
    await ctx.models.get(job.modelId)!.queue.cancel(job);
    return job.toJSON(null);
  });

  app.get<{ Params: ImageParams }>('/api/jobs/:id/images/:k', { schema: { params: imageParamsSchema } }, async (request, reply) => {
    const job = findJob(ctx, request.params.id);
    const k = Number(request.params.k);
    const image = job.images[k];
    if (!image) {
      throw notFound(
        job.status === 'done'
          ? `job ${job.id} has images 0..${job.images.length - 1}, not ${k}`
          : `job ${job.id} is ${job.status}; it has no images${job.finished ? '' : ' yet'}`,
      );
    }
    return reply
      .type('image/png')
      .header('Content-Disposition', `inline; filename="sana-${image.seed}-${k}.png"`)
      .header('Cache-Control', 'private, max-age=3600')
      .send(image.png);
  });
}
