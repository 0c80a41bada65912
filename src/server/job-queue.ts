// Where jobs wait for their model. One interface with two implementations: this in-process one (the default: one
// job at a time on the server's own pipeline) and the Redis/BullMQ one (redis-queue.ts: many workers on many
// machines), so the routes, event streams and page behave the same over both. The methods are async because the
// Redis queue answers them over the network. ref: docs/server.md "Scale-out", DESIGN.md §6 "Serving"

import { ApiError } from './errors.js';
import { Job } from './job.js';

export interface QueueStats {
  running: number;
  queued: number;
  capacity: number;
}

/** What one worker (a `sana worker` process, or the server itself in-process) has done for a model. */
export interface WorkerMetrics {
  id: string;
  completed: number;
  failed: number;
  cancelled: number;
  /** Seconds spent running jobs (completed or not). */
  busySeconds: number;
  /** When the worker started and last reported, ms since the epoch. */
  startedAt: number;
  lastSeen: number;
}

export interface QueueMetrics extends QueueStats {
  /** Jobs ended since the queue (or the Redis database) began, by how they ended. */
  finished: { done: number; failed: number; cancelled: number };
  workers: WorkerMetrics[];
}

export interface JobQueue {
  /** Queues a job; returns its position (1 = next to run, 0 = started at once); a full queue throws a 429. */
  submit(job: Job): Promise<number>;
  /** Cancels a waiting job at once or a running one at its next step; resolves once it has stopped. */
  cancel(job: Job): Promise<void>;
  /** 1-based place in line while waiting, else null. */
  position(job: Job): Promise<number | null>;
  stats(): Promise<QueueStats>;
  /** For GET /metrics. */
  metrics(): Promise<QueueMetrics>;
  /** Refuses new jobs, cancels waiting ones, stops the running one at its next step, and waits for it. */
  close(): Promise<void>;
}

/** Seconds a job takes before any has finished, for the first Retry-After. */
const FIRST_GUESS_SECONDS = 5;

export class InProcessQueue implements JobQueue {
  private readonly waiting: Job[] = [];
  private running: Job | null = null;
  private idle: Promise<void> = Promise.resolve();
  private averageSeconds: number | null = null;
  private closed = false;
  private readonly finished = { done: 0, failed: 0, cancelled: 0 };
  private readonly worker: WorkerMetrics = { id: 'in-process', completed: 0, failed: 0, cancelled: 0, busySeconds: 0, startedAt: Date.now(), lastSeen: Date.now() };

  constructor(
    private readonly modelId: string,
    private readonly capacity: number,
    /** Runs a job to its end; reports failure on the job itself, never throws. */
    private readonly run: (job: Job) => Promise<void>,
  ) {}

  async submit(job: Job): Promise<number> {
    if (this.closed) throw new ApiError(503, 'the server is shutting down; no new jobs', 'server_error');
    if (this.waiting.length >= this.capacity) {
      const retry = Math.max(1, Math.ceil((this.waiting.length + 1) * (this.averageSeconds ?? FIRST_GUESS_SECONDS)));
      throw new ApiError(
        429,
        `the queue of model "${this.modelId}" is full (${this.waiting.length} jobs waiting); retry in about ${retry} s`,
        'rate_limit_error',
        null,
        { 'Retry-After': String(retry) },
      );
    }
    this.waiting.push(job);
    const position = this.waiting.length;
    job.emit('queued', { position });
    this.pump();
    return this.indexOf(job) ?? 0;
  }

  async cancel(job: Job): Promise<void> {
    if (job.finished) throw new ApiError(409, `job ${job.id} is already ${job.status}; nothing to cancel`, 'conflict_error');
    const at = this.waiting.indexOf(job);
    if (at >= 0) {
      this.waiting.splice(at, 1);
      job.cancel();
      this.finished.cancelled++;
      this.announcePositions(at);
      return;
    }
    job.cancelRequested = true;
    await job.whenFinished();
  }

  async position(job: Job): Promise<number | null> {
    return this.indexOf(job);
  }

  async stats(): Promise<QueueStats> {
    return { running: this.running ? 1 : 0, queued: this.waiting.length, capacity: this.capacity };
  }

  async metrics(): Promise<QueueMetrics> {
    return { ...(await this.stats()), finished: { ...this.finished }, workers: [{ ...this.worker, lastSeen: Date.now() }] };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) {
      job.cancel();
      this.finished.cancelled++;
    }
    if (this.running) this.running.cancelRequested = true;
    await this.idle;
  }

  private indexOf(job: Job): number | null {
    const at = this.waiting.indexOf(job);
    return at < 0 ? null : at + 1;
  }

  private pump(): void {
    if (this.running || !this.waiting.length) return;
    const job = this.waiting.shift()!;
    this.running = job;
    this.announcePositions(0);
    const t0 = performance.now();
    this.idle = this.run(job)
      .catch((e: unknown) => {
        if (!job.finished) job.fail(e instanceof Error ? e.message : String(e));
      })
      .finally(() => {
        const seconds = (performance.now() - t0) / 1000;
        this.worker.busySeconds += seconds;
        if (job.status === 'done' || job.status === 'failed' || job.status === 'cancelled') {
          this.finished[job.status]++;
          this.worker[job.status === 'done' ? 'completed' : job.status]++;
        }
        if (job.status === 'done') this.averageSeconds = this.averageSeconds === null ? seconds : 0.8 * this.averageSeconds + 0.2 * seconds;
        this.running = null;
        this.pump();
      });
  }

  /** Waiting jobs from index `from` on moved up one place: tell their watchers. */
  private announcePositions(from: number): void {
    for (let i = from; i < this.waiting.length; i++) this.waiting[i].emit('queued', { position: i + 1 });
  }
}
