// Where jobs wait for their model. One interface, so a Redis-backed queue (many workers, #19) can stand in for the
// in-process one: a bounded line per model, one job running at a time, cancellation of waiting and running jobs.
// ref: docs/server.md, DESIGN.md §6 "Serving"

import { ApiError } from './errors.js';
import { Job } from './job.js';

export interface QueueStats {
  running: number;
  queued: number;
  capacity: number;
}

export interface JobQueue {
  /** Queues a job; returns its position (1 = next to run, 0 = started at once); a full queue throws a 429. */
  submit(job: Job): number;
  /** Cancels a waiting job at once or a running one at its next step; resolves once it has stopped. */
  cancel(job: Job): Promise<void>;
  /** 1-based place in line while waiting, else null. */
  position(job: Job): number | null;
  stats(): QueueStats;
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

  constructor(
    private readonly modelId: string,
    private readonly capacity: number,
    /** Runs a job to its end; reports failure on the job itself, never throws. */
    private readonly run: (job: Job) => Promise<void>,
  ) {}

  submit(job: Job): number {
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
    return this.position(job) ?? 0;
  }

  async cancel(job: Job): Promise<void> {
    if (job.finished) throw new ApiError(409, `job ${job.id} is already ${job.status}; nothing to cancel`, 'conflict_error');
    const at = this.waiting.indexOf(job);
    if (at >= 0) {
      this.waiting.splice(at, 1);
      job.cancel();
      this.announcePositions(at);
      return;
    }
    job.cancelRequested = true;
    await job.whenFinished();
  }

  position(job: Job): number | null {
    const at = this.waiting.indexOf(job);
    return at < 0 ? null : at + 1;
  }

  stats(): QueueStats {
    return { running: this.running ? 1 : 0, queued: this.waiting.length, capacity: this.capacity };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) job.cancel();
    if (this.running) this.running.cancelRequested = true;
    await this.idle;
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
