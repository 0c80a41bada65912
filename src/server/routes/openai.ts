// The OpenAI Images API subset, so existing clients work unchanged: POST /v1/images/generations answers once the
// images are done (through the same queue as the native API), GET /v1/models lists the models.
// ref: docs/server.md "OpenAI Images API"

import type { FastifyInstance } from 'fastify';
import { ServerContext, createJob, findModel, parseSeed, submitJob } from '../context.js';
import { ApiError, badRequest } from '../errors.js';
import { OpenAiGenerationBody, openAiGenerationSchema } from '../schemas.js';

export function registerOpenAiRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/models', async () => ({
    object: 'list',
    data: [...ctx.models.values()].map((m) => ({ id: m.id, object: 'model', created: 0, owned_by: 'sana-ts' })),
  }));

  app.post<{ Body: OpenAiGenerationBody }>(
    '/v1/images/generations',
    { schema: { body: openAiGenerationSchema(ctx.limits) } },
    async (request, reply) => {
      const b = request.body;
      const model = findModel(ctx, b.model ?? undefined);
      const size = parseSize(b.size ?? undefined, model.width, model.height, ctx.limits.maxSize);
      const job = createJob(
        ctx,
        model,
        { prompts: [b.prompt], numImagesPerPrompt: b.n ?? 1, width: size.width, height: size.height, seed: parseSeed(b.seed) },
        { count: 'n', preview: false },
      );
      await submitJob(ctx, model, job);
      // A client that gives up should not leave its job running.
      reply.raw.on('close', () => {
        if (!reply.raw.writableFinished && !job.finished) model.queue.cancel(job).catch(() => {});
      });
      await job.whenFinished();
      if (job.status === 'failed') throw new ApiError(500, `generation failed: ${job.error}`, 'server_error');
      if (job.status === 'cancelled') throw new ApiError(503, 'the job was cancelled (the server is shutting down)', 'server_error');
      const base = `${request.protocol}://${request.host}`;
      return {
        created: Math.floor(Date.now() / 1000),
        data: job.images.map((img) =>
          b.response_format === 'url' ? { url: `${base}/api/jobs/${job.id}/images/${img.index}` } : { b64_json: img.png.toString('base64') },
        ),
      };
    },
  );
}

function parseSize(size: string | undefined, width: number, height: number, maxSize: number): { width: number; height: number } {
  if (size === undefined || size === 'auto') return { width, height };
  const [w, h] = size.split('x').map(Number);
  if (w < 32 || h < 32 || w > maxSize || h > maxSize) {
    throw badRequest(`body/size must be "auto" or "WxH" with each side from 32 to ${maxSize}, got "${size}"`, 'size');
  }
  return { width: w, height: h };
}
