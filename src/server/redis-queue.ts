// The JobQueue of an API server whose jobs run on `sana worker` processes: each model is a BullMQ queue on Redis.
// The server keeps its own Job object for every job it submitted (the routes, event streams and page read that, as
// in-process) and mirrors the workers onto it: live events arrive on a pub/sub channel, and how a job ended is read
// from BullMQ's record of it (reliable: pub/sub loses messages while Redis restarts; a once-a-second check of the
// jobs still open catches up). Cancelling removes a waiting job from Redis, or flags and publishes it for the
// worker running it. ref: docs/server.md "Scale-out", DESIGN.md §6 "Serving"

import * as path from 'node:path';
import { Job as BullJob, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { writeBytesAtomic } from '../io/atomic-write.js';
import { ApiError } from './errors.js';
import { Job, JobImage } from './job.js';
import { JobQueue, QueueMetrics, QueueStats, WorkerMetrics } from './job-queue.js';
import { WorkerResult, encodePayload } from './job-payload.js';
import { BULL_PREFIX, JOB_ATTEMPTS, checkRedisReachable, displayRedisUrl, parseRedisUrl, redisKeys } from './redis-connection.js';

export interface RedisQueueOptions {
  /** Jobs waiting per model before a 429. */
  capacity: number;
  previewEvery: number;
  /** How long BullMQ keeps a finished job's record (the worker keeps the PNGs as long). */
  resultSeconds: number;
  outputDir?: string;
}

/** How often open jobs are checked against Redis, and their positions in line refreshed. */
const CHECK_MS = 1000;
/** Seconds a job takes before any has finished, for the first Retry-After. */
const FIRST_GUESS_SECONDS = 5;

/** The Redis connections an API server shares between its models' queues. */
export class RedisQueueHub {
  private readonly queues: RedisJobQueue[] = [];

  private constructor(
    readonly url: string,
    readonly client: Redis,
    private readonly subscriber: Redis,
  ) {
    subscriber.on('message', (channel: string, message: string) => {
      for (const q of this.queues) if (channel === redisKeys.events(q.modelId)) q.onMessage(message);
    });
  }

  /** Connects (refusing an unreachable URL with a one-line error naming it). */
  static async open(url: string): Promise<RedisQueueHub> {
    await checkRedisReachable(url);
    // Requests that touch Redis fail after a few reconnects instead of hanging an HTTP answer while Redis is down.
    const client = new Redis({ ...parseRedisUrl(url), maxRetriesPerRequest: 3, retryStrategy: (n) => Math.min(n * 200, 2000) });
    const subscriber = new Redis({ ...parseRedisUrl(url), maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(n * 200, 2000) });
    for (const c of [client, subscriber]) c.on('error', () => {}); // reconnects are retried; failed commands report
    return new RedisQueueHub(url, client, subscriber);
  }

  queue(modelId: string, options: RedisQueueOptions): RedisJobQueue {
    const q = new RedisJobQueue(this, modelId, options);
    this.queues.push(q);
    return q;
  }

  /** Subscribes to every queue's live events; call once the queues are made, before serving. */
  async listen(): Promise<void> {
    await this.subscriber.subscribe(...this.queues.map((q) => redisKeys.events(q.modelId)));
  }

  async close(): Promise<void> {
    this.subscriber.disconnect();
    await this.client.quit().catch(() => this.client.disconnect());
  }
}

export class RedisJobQueue implements JobQueue {
  private readonly queue: Queue;
  /** Jobs this server submitted that have not ended. */
  private readonly open = new Map<string, Job>();
  private readonly announced = new Map<string, number>();
  private readonly settling = new Set<string>();
  /** Which start of each job this server has announced ("worker#attempt"), so it is announced once. */
  private readonly startedAs = new Map<string, string>();
  private averageSeconds: number | null = null;
  private closed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly hub: RedisQueueHub,
    readonly modelId: string,
    private readonly o: RedisQueueOptions,
  ) {
    this.queue = new Queue(modelId, { connection: hub.client, prefix: BULL_PREFIX });
    this.queue.on('error', () => {}); // surfaces through the failing calls
    this.timer = setInterval(() => void this.check().catch(() => {}), CHECK_MS);
    this.timer.unref();
  }

  async submit(job: Job): Promise<number> {
    if (this.closed) throw new ApiError(503, 'the server is shutting down; no new jobs', 'server_error');
    const { wait, active } = await this.reach(() => this.queue.getJobCounts('wait', 'active'));
    if (wait >= this.o.capacity) {
      const workers = Math.max(1, active);
      const retry = Math.max(1, Math.ceil(((wait + 1) * (this.averageSeconds ?? FIRST_GUESS_SECONDS)) / workers));
      throw new ApiError(
        429,
        `the queue of model "${this.modelId}" is full (${wait} jobs waiting); retry in about ${retry} s`,
        'rate_limit_error',
        null,
        { 'Retry-After': String(retry) },
      );
    }
    this.open.set(job.id, job);
    try {
      await this.reach(() =>
        this.queue.add('generate', encodePayload(job.request, job.sampler, job.preview, this.o.previewEvery), {
          jobId: job.id, // an idempotency key's id: BullMQ adds nothing when a job of that id exists
          attempts: JOB_ATTEMPTS, // for unexpected errors; bad input is never retried (redis-worker.ts)
          removeOnComplete: { age: this.o.resultSeconds },
          removeOnFail: { age: this.o.resultSeconds },
        }),
      );
    } catch (e) {
      this.open.delete(job.id);
      throw e;
    }
    const position = (await this.position(job)) ?? 1;
    this.announce(job, position);
    return position;
  }

  async cancel(job: Job): Promise<void> {
    if (job.finished) throw new ApiError(409, `job ${job.id} is already ${job.status}; nothing to cancel`, 'conflict_error');
    // A waiting job is removed at once; BullMQ refuses (0) to remove one a worker holds the lock of.
    if (job.status === 'queued' && (await this.reach(() => this.queue.remove(job.id))) === 1) {
      void this.hub.client.hincrby(redisKeys.finished(this.modelId), 'cancelled', 1).catch(() => {});
      this.end(job, () => job.cancel());
      return;
    }
    await this.reach(async () => {
      // the flag first: a worker that takes the job up later (or after a retry) reads it; the one running it now hears
      await this.hub.client.set(redisKeys.cancelFlag(this.modelId, job.id), '1', 'EX', this.o.resultSeconds);
      await this.hub.client.publish(redisKeys.cancelChannel(this.modelId), job.id);
    });
    await this.settle(job);
    await job.whenFinished();
  }

  async position(job: Job): Promise<number | null> {
    if (job.status !== 'queued') return null;
    const at = (await this.waitingIds()).indexOf(job.id);
    return at < 0 ? null : at + 1;
  }

  async stats(): Promise<QueueStats> {
    const { wait, active } = await this.reach(() => this.queue.getJobCounts('wait', 'active'));
    return { running: active, queued: wait, capacity: this.o.capacity };
  }

  async metrics(): Promise<QueueMetrics> {
    const c = this.hub.client;
    const stats = await this.stats();
    const finished = await this.reach(() => c.hgetall(redisKeys.finished(this.modelId)));
    const ids = await this.reach(() => c.smembers(redisKeys.workers(this.modelId)));
    const workers: WorkerMetrics[] = [];
    for (const id of ids.sort()) {
      const h = await this.reach(() => c.hgetall(redisKeys.worker(this.modelId, id)));
      if (!h.startedAt) continue; // its record expired
      const n = (k: string) => Number(h[k] ?? 0);
      workers.push({ id, completed: n('completed'), failed: n('failed'), cancelled: n('cancelled'), busySeconds: n('busySeconds'), startedAt: n('startedAt'), lastSeen: n('lastSeen') });
    }
    const f = (k: string) => Number(finished[k] ?? 0);
    return { ...stats, finished: { done: f('done'), failed: f('failed'), cancelled: f('cancelled') }, workers };
  }

  /**
   * The jobs this server still follows are failed here (their streams end saying why) but stay queued in Redis:
   * the workers still run them, and a restarted server can serve new ones.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    for (const job of this.open.values()) {
      if (!job.finished) job.fail('the API server stopped; the job stays on the Redis queue and a worker will still run it');
    }
    this.open.clear();
    await this.queue.close();
  }

  /** A live event from a worker: {id, event, data}. */
  onMessage(message: string): void {
    let m: { id: string; event: string; data: any };
    try {
      m = JSON.parse(message);
    } catch {
      return;
    }
    const job = this.open.get(m.id);
    if (!job || job.finished) return;
    if (m.event === 'finished') {
      void this.settle(job).catch(() => {});
      return;
    }
    if (m.event === 'started') this.begin(job, m.data.worker, m.data.attempt);
    // a missed `started` still starts the copy here before its first stage or step
    else if (job.status === 'queued') job.start();
    if (m.event === 'stage') job.setStage(m.data.stage);
    else if (m.event === 'step') job.setStep(m.data.step, m.data.seconds, m.data.preview);
  }

  /** Positions of the waiting jobs, and an end for those no longer waiting whose end was missed. */
  private async check(): Promise<void> {
    if (!this.open.size) return;
    const ids = await this.waitingIds();
    const place = new Map(ids.map((id, i) => [id, i + 1]));
    for (const job of [...this.open.values()]) {
      const p = place.get(job.id);
      if (p !== undefined) this.announce(job, p);
      else await this.settle(job);
    }
  }

  /** Reads where BullMQ says the job is, and ends the copy here if it has ended there. */
  private async settle(job: Job): Promise<void> {
    if (job.finished || this.settling.has(job.id)) return;
    this.settling.add(job.id);
    try {
      const bullJob = await this.reach(() => BullJob.fromId(this.queue, job.id));
      if (!bullJob) {
        // gone without an end we saw: removed by a cancel from another API server
        this.end(job, () => job.cancel());
        return;
      }
      const state = await this.reach(() => bullJob.getState());
      if (state === 'completed') await this.complete(job, bullJob.returnvalue as WorkerResult);
      else if (state === 'failed') this.end(job, () => job.fail(bullJob.failedReason || 'the job failed on its worker'));
      else if (state === 'active' && bullJob.processedBy) this.begin(job, bullJob.processedBy, bullJob.attemptsStarted);
    } finally {
      this.settling.delete(job.id);
    }
  }

  private async complete(job: Job, result: WorkerResult): Promise<void> {
    if (result.status === 'cancelled') {
      this.end(job, () => job.cancel());
      return;
    }
    const keys = result.images.map((img) => redisKeys.image(this.modelId, job.id, img.index));
    const bytes = keys.length ? await this.reach(() => this.hub.client.mgetBuffer(...keys)) : [];
    if (bytes.some((b) => b === null)) {
      this.end(job, () => job.fail(`the images of job ${job.id} are no longer in Redis (kept ${this.o.resultSeconds} s)`));
      return;
    }
    const images: JobImage[] = result.images.map((img, k) => ({ ...img, png: bytes[k]! }));
    if (this.o.outputDir) for (const img of images) writeBytesAtomic(path.join(this.o.outputDir, `${job.id}-${img.index}.png`), img.png);
    const seconds = result.timings.totalSeconds;
    this.averageSeconds = this.averageSeconds === null ? seconds : 0.8 * this.averageSeconds + 0.2 * seconds;
    this.end(job, () =>
      job.complete({ images, generatedWidth: result.generatedWidth, generatedHeight: result.generatedHeight, warnings: result.warnings, timings: result.timings }),
    );
  }

  /**
   * The copy here starts (again, for a retry) when a worker starts the job: heard live from the worker, or read from
   * BullMQ's record by the once-a-second check, whichever comes first; the second is not announced again.
   */
  private begin(job: Job, worker: string, attempt: number): void {
    const as = `${worker}#${attempt}`;
    if (job.finished || this.startedAs.get(job.id) === as) return;
    this.startedAs.set(job.id, as);
    job.start({ worker, attempt });
  }

  private end(job: Job, finish: () => void): void {
    this.open.delete(job.id);
    this.announced.delete(job.id);
    this.startedAs.delete(job.id);
    if (!job.finished) finish();
  }

  /** A `queued` event whenever a waiting job's place in line changes. */
  private announce(job: Job, position: number): void {
    if (job.status !== 'queued' || this.announced.get(job.id) === position) return;
    this.announced.set(job.id, position);
    job.emit('queued', { position });
  }

  /** Waiting job ids, next to run first. */
  private waitingIds(): Promise<string[]> {
    return this.reach(() => this.queue.getRanges(['wait'], 0, -1, true));
  }

  /** A Redis call whose failure is a 503 naming the queue, not a stack trace. */
  private async reach<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (e) {
      if (e instanceof ApiError) throw e;
      throw new ApiError(503, `the job queue at ${displayRedisUrl(this.hub.url)} did not answer: ${(e as Error).message}`, 'server_error');
    }
  }
}
