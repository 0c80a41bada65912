// `sana worker`: takes jobs of its models from the Redis/BullMQ queue and runs each with the same runner as the
// in-process server (runJob), so a job's images are the same in both modes. It publishes the job's live events
// (started, stages, steps with previews) for the API servers' event streams, stores the PNGs in Redis with a TTL,
// stops a job at its next step when its cancellation is published, and keeps per-worker counts for /metrics.
//
// Reliability is BullMQ's: a job is locked by its worker and the lock renewed while it runs; a worker killed
// mid-job stops renewing, another worker's stalled-job check moves the job back to waiting, and a third start is
// refused (a job that kills its workers is failed, not retried forever). A job that fails for a reason of its own
// (bad input: RequestError, ApiError) is an UnrecoverableError: failed at once, never retried.
// ref: docs/server.md "Scale-out", DESIGN.md §6 "Serving"

import * as os from 'node:os';
import { Job as BullJob, UnrecoverableError, Worker } from 'bullmq';
import { DEFAULT_MODEL_DIR, DEFAULT_MODEL_NAME, LoadPipelineOptions, loadSanaPipeline } from '../pipeline/components.js';
import { RequestError } from '../pipeline/request.js';
import { ApiError } from './errors.js';
import { Job, JobEventName } from './job.js';
import { WorkerResult, decodePayload } from './job-payload.js';
import { BULL_PREFIX, JOB_ATTEMPTS, checkRedisReachable, parseRedisUrl, redisClient, redisKeys } from './redis-connection.js';
import { RunnableModel, runJob } from './run-job.js';
import { ModelSpec, modelId } from './served-model.js';

export interface SanaWorkerOptions {
  /** redis://HOST:PORT[/DB] */
  queue: string;
  /** Models to take jobs for (default: the bundled model); their names must match the API server's. */
  models?: readonly ModelSpec[];
  load?: LoadPipelineOptions;
  /** Also write every image to DIR/<job id>-<k>.png (atomically). */
  outputDir?: string;
  /** A job whose worker has not renewed its lock for this long is taken for abandoned and retried (default 30). */
  stallSeconds?: number;
  /** Most starts of one job after workers died under it (default 3; unexpected errors are retried up to 3 starts). */
  maxAttempts?: number;
  /** How long results (PNGs, job records) stay in Redis (default 60). */
  resultMinutes?: number;
  /** This worker's name in /metrics (default: host name and process id). */
  name?: string;
  /** A line of log per job. */
  log?: (line: string) => void;
}

export interface SanaWorker {
  readonly id: string;
  readonly models: ReadonlyArray<{ id: string; name: string; width: number }>;
  /** Takes no new job, lets the running one finish, and disconnects. */
  close(): Promise<void>;
}

/** How often a worker says it is alive in /metrics. */
const HEARTBEAT_MS = 5000;
/** Worker records outlive a silent worker by a day, then Redis forgets them. */
const WORKER_RECORD_SECONDS = 86_400;
/** Events the API servers' streams need live; how a job ended comes from BullMQ's own record of it. */
const LIVE_EVENTS: ReadonlySet<JobEventName> = new Set(['started', 'stage', 'step']);

interface WorkerModel extends RunnableModel {
  id: string;
  width: number;
}

/** Thrown values that are the job's own fault: retrying cannot help. */
const isBadInput = (e: unknown) => e instanceof RequestError || e instanceof ApiError;

export async function startSanaWorker(o: SanaWorkerOptions): Promise<SanaWorker> {
  await checkRedisReachable(o.queue);
  const id = o.name ?? `${os.hostname()}-${process.pid}`;
  const stallMs = Math.round((o.stallSeconds ?? 30) * 1000);
  const maxAttempts = o.maxAttempts ?? JOB_ATTEMPTS;
  const resultSeconds = Math.round((o.resultMinutes ?? 60) * 60);
  const log = o.log ?? (() => {});

  const models: WorkerModel[] = [];
  for (const spec of o.models?.length ? o.models : [{}]) {
    const mid = modelId(spec);
    // the server refuses the same names; it is also the BullMQ queue's name, where ":" would split the keys
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(mid)) throw new Error(`model name "${mid}": use 1-64 letters, digits, ".", "_" or "-" (give NAME=DIR to choose one)`);
    if (models.some((m) => m.id === mid)) throw new Error(`two models are named "${mid}": give NAME=DIR to tell them apart`);
    const { pipeline, modelName } = await loadSanaPipeline(spec.source ?? DEFAULT_MODEL_DIR, { ...o.load, keepResident: true });
    await pipeline.preload();
    const c = pipeline.components;
    models.push({ id: mid, name: spec.source ? modelName : DEFAULT_MODEL_NAME, pipeline, width: c.transformer.sampleSize * c.vae.compression });
  }

  const client = redisClient(o.queue);
  const subscriber = redisClient(o.queue);
  const running = new Map<string, Job>(); // model id -> its running job
  subscriber.on('message', (channel: string, jobId: string) => {
    for (const m of models) {
      const job = running.get(m.id);
      if (channel === redisKeys.cancelChannel(m.id) && job?.id === jobId) job.cancelRequested = true;
    }
  });
  await subscriber.subscribe(...models.map((m) => redisKeys.cancelChannel(m.id)));

  const heartbeat = async () => {
    const now = String(Date.now());
    const multi = client.multi();
    for (const m of models) {
      multi.sadd(redisKeys.workers(m.id), id);
      multi.hset(redisKeys.worker(m.id, id), 'lastSeen', now);
      multi.hsetnx(redisKeys.worker(m.id, id), 'startedAt', now);
      multi.expire(redisKeys.worker(m.id, id), WORKER_RECORD_SECONDS);
    }
    await multi.exec();
  };
  await heartbeat();
  const beat = setInterval(() => heartbeat().catch(() => {}), HEARTBEAT_MS);

  const workers = models.map((model) => {
    const process = async (bullJob: BullJob): Promise<WorkerResult> => {
      const t0 = performance.now();
      let decoded: ReturnType<typeof decodePayload>;
      try {
        decoded = decodePayload(bullJob.data, model.width);
      } catch (e) {
        throw isBadInput(e) ? new UnrecoverableError((e as Error).message) : e;
      }
      const job = new Job(model.id, decoded.request, decoded.sampler, decoded.preview, bullJob.id!);
      running.set(model.id, job);
      log(`started ${job.id} (model ${model.id}, attempt ${bullJob.attemptsStarted})`);
      // after registering the job, so a cancellation published from now on is seen, and one before is in the flag
      if (await client.exists(redisKeys.cancelFlag(model.id, job.id))) job.cancelRequested = true;
      const unsubscribe = job.subscribe((e) => {
        if (LIVE_EVENTS.has(e.event)) void client.publish(redisKeys.events(model.id), JSON.stringify({ id: job.id, event: e.event, data: e.data }));
      });
      try {
        await runJob(job, model, { previewEvery: decoded.previewEvery, outputDir: o.outputDir, startDetail: { worker: id, attempt: bullJob.attemptsStarted } });
      } finally {
        unsubscribe();
        running.delete(model.id);
        void client.hincrbyfloat(redisKeys.worker(model.id, id), 'busySeconds', (performance.now() - t0) / 1000);
      }
      if (job.status === 'cancelled') return { status: 'cancelled', worker: id };
      if (job.status === 'failed') {
        throw isBadInput(job.failureCause) ? new UnrecoverableError(job.error ?? 'failed') : new Error(job.error ?? 'failed');
      }
      const multi = client.multi();
      for (const img of job.images) multi.set(redisKeys.image(model.id, job.id, img.index), img.png, 'EX', resultSeconds);
      await multi.exec();
      return {
        status: 'done',
        worker: id,
        images: job.images.map(({ index, prompt, seed, width, height }) => ({ index, prompt, seed, width, height })),
        generatedWidth: job.generatedWidth!,
        generatedHeight: job.generatedHeight!,
        warnings: [...job.warnings],
        timings: {
          encodeSeconds: job.timings!.encodeSeconds,
          denoiseSeconds: job.timings!.denoiseSeconds,
          decodeSeconds: job.timings!.decodeSeconds,
          totalSeconds: job.timings!.totalSeconds,
        },
      };
    };
    const worker = new Worker(model.id, process, {
      // reconnect within 2 s while Redis restarts (BullMQ's default backs off up to 20 s)
      connection: { ...parseRedisUrl(o.queue), maxRetriesPerRequest: null, retryStrategy: (n: number) => Math.min(n * 200, 2000) },
      prefix: BULL_PREFIX,
      concurrency: 1, // one job at a time per model, as in-process: a pipeline is not shared by two runs
      lockDuration: stallMs,
      stalledInterval: Math.max(1000, Math.round(stallMs / 2)),
      maxStalledCount: maxAttempts - 1,
      name: id,
    });
    // Counted once BullMQ has recorded the end (after the move to completed or failed), so a job whose lock was
    // lost meanwhile (taken for stalled and given to another worker) is not counted twice.
    const ended = (bullJob: BullJob, status: 'done' | 'failed' | 'cancelled', detail: string) => {
      const field = status === 'done' ? 'completed' : status;
      const multi = client.multi();
      multi.hincrby(redisKeys.finished(model.id), status, 1);
      multi.hincrby(redisKeys.worker(model.id, id), field, 1);
      multi.publish(redisKeys.events(model.id), JSON.stringify({ id: bullJob.id, event: 'finished', data: {} }));
      multi.exec().catch(() => {});
      log(`${status} ${bullJob.id} (model ${model.id}, attempt ${bullJob.attemptsStarted})${detail}`);
    };
    worker.on('completed', (bullJob: BullJob, result: WorkerResult) => ended(bullJob, result.status, ''));
    worker.on('failed', (bullJob: BullJob | undefined, err: Error) => {
      if (!bullJob) return;
      // a failed attempt that will be retried is not an end
      bullJob.getState().then(
        (state) => (state === 'failed' ? ended(bullJob, 'failed', `: ${err.message}`) : log(`retrying ${bullJob.id}: ${err.message}`)),
        () => {},
      );
    });
    worker.on('error', (e: Error) => log(`queue error: ${e.message}`));
    return worker;
  });

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      clearInterval(beat);
      await Promise.all(workers.map((w) => w.close()));
      subscriber.disconnect();
      await client.quit().catch(() => client.disconnect());
      for (const m of models) await m.pipeline.release();
    })());
  return { id, models: models.map(({ id: mid, name, width }) => ({ id: mid, name, width })), close };
}
