// `startSanaServer`: loads the models (resident), wires the queue, the routes, authentication, CORS and the error
// format into a Fastify app, listens, and shuts down gracefully. ref: docs/server.md

import * as fs from 'node:fs';
import type { ServerResponse } from 'node:http';
import cors from '@fastify/cors';
import Fastify, { FastifyInstance } from 'fastify';
import { LoadPipelineOptions } from '../pipeline/components.js';
import { checkExposure, installAuth } from './auth.js';
import { ServerContext } from './context.js';
import { ApiError, installErrorHandling } from './errors.js';
import { InProcessQueue } from './job-queue.js';
import { JobStore } from './job-store.js';
import { registerNativeRoutes } from './routes/native.js';
import { registerMetricsRoute } from './routes/metrics.js';
import { registerOpenAiRoutes } from './routes/openai.js';
import { registerPageRoutes } from './routes/page.js';
import { registerLocalPageRoutes } from './routes/local-page.js';
import { RedisQueueHub } from './redis-queue.js';
import { runJob } from './run-job.js';
import { ServerLimits, resolveServerLimits } from './schemas.js';
import { ModelSpec, ServedModel, loadServedModel } from './served-model.js';

export interface SanaServerOptions {
  /** Models to serve; the first is the default (default: the bundled model). */
  models?: readonly ModelSpec[];
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  apiKey?: string;
  /** Origin allowed to call the API from a browser (no CORS headers without it). */
  cors?: string;
  /** Jobs waiting per model. */
  queueSize?: number;
  keepJobs?: number;
  keepMinutes?: number;
  outputDir?: string;
  limits?: Partial<ServerLimits>;
  previewEvery?: number;
  bodyLimit?: number;
  /** How models are loaded (threads, text quantization, VAE tiling). */
  load?: LoadPipelineOptions;
  /** Log each request (pino, JSON lines on stdout). */
  log?: boolean;
  /** redis://HOST:PORT: jobs go to a BullMQ queue on Redis for `sana worker` processes (default: in-process). */
  queue?: string;
}

export interface SanaServer {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  readonly app: FastifyInstance;
  readonly models: readonly ServedModel[];
  /** Stops accepting, cancels waiting jobs, stops the running ones at their next step, ends event streams. */
  close(): Promise<void>;
}

export const DEFAULT_PORT = 7860;
/** Room for a start image, a mask and a control image as base64 PNG files. */
export const DEFAULT_BODY_LIMIT = 16 * 2 ** 20;

export async function startSanaServer(o: SanaServerOptions = {}): Promise<SanaServer> {
  const host = o.host ?? '127.0.0.1';
  checkExposure(host, o.apiKey);
  const limits: ServerLimits = resolveServerLimits(o.limits);
  const previewEvery = o.previewEvery ?? 5;
  if (o.outputDir) fs.mkdirSync(o.outputDir, { recursive: true });

  const specs = o.models?.length ? o.models : [{}];
  const models: ServedModel[] = [];
  // On Redis the workers generate: the server reads the models' configs (sizes, sampler) but loads no weights.
  const hub = o.queue ? await RedisQueueHub.open(o.queue) : undefined;
  const queueSize = o.queueSize ?? 16;
  const resultSeconds = (o.keepMinutes ?? 60) * 60;
  // a model that fails to load must not leave the Redis connections holding the process open
  try {
    for (const spec of specs) {
      const model = await loadServedModel(
        spec,
        o.load ?? {},
        (id) =>
          hub
            ? hub.queue(id, { capacity: queueSize, previewEvery, resultSeconds, outputDir: o.outputDir })
            : new InProcessQueue(id, queueSize, (job) => runJob(job, model, { previewEvery, outputDir: o.outputDir })),
        !hub,
      );
      if (models.some((m) => m.id === model.id)) throw new Error(`two models are named "${model.id}": give NAME=DIR to tell them apart`);
      models.push(model);
    }
    await hub?.listen();
  } catch (e) {
    await hub?.close();
    throw e;
  }
  const ctx: ServerContext = {
    models: new Map(models.map((m) => [m.id, m])),
    defaultModel: models[0],
    store: new JobStore(o.keepJobs ?? 100, (o.keepMinutes ?? 60) * 60_000),
    limits,
    streams: new Set<ServerResponse>(),
    stopping: false,
  };

  const app = Fastify({
    logger: o.log ? { level: 'info' } : false,
    bodyLimit: o.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Unknown fields are errors, not silently dropped; types are not coerced.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    return503OnClosing: true,
  });
  installErrorHandling(app);
  if (o.cors) await app.register(cors, { origin: o.cors, methods: ['GET', 'POST', 'DELETE'], exposedHeaders: ['Location', 'Retry-After'] });
  app.addHook('onRequest', async () => {
    if (ctx.stopping) throw new ApiError(503, 'the server is shutting down', 'server_error');
  });
  installAuth(app, o.apiKey);
  registerPageRoutes(app);
  registerLocalPageRoutes(app);
  registerNativeRoutes(app, ctx);
  registerOpenAiRoutes(app, ctx);
  registerMetricsRoute(app, ctx);

  await app.listen({ host, port: o.port ?? DEFAULT_PORT });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (o.port ?? DEFAULT_PORT);
  const urlHost = host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      ctx.stopping = true;
      await Promise.all(models.map((m) => m.queue.close()));
      for (const res of ctx.streams) res.end();
      ctx.streams.clear();
      await app.close();
      for (const m of models) await m.pipeline.release();
      await hub?.close();
    })());
  return { url: `http://${urlHost}:${port}`, port, app, models, close };
}
