// Finished jobs are kept, images included, for a bounded time and count, so that clients can fetch results after
// the fact without the server's memory growing without end. ref: docs/server.md "--keep-jobs", "--keep-minutes"

import { Job } from './job.js';

export class JobStore {
  private readonly jobs = new Map<string, Job>();

  constructor(
    private readonly keepJobs: number,
    private readonly keepMilliseconds: number,
  ) {}

  add(job: Job): void {
    this.prune();
    this.jobs.set(job.id, job);
  }

  get(id: string): Job | undefined {
    this.prune();
    return this.jobs.get(id);
  }

  /** Forgets a job that never made it into its queue. */
  delete(id: string): void {
    this.jobs.delete(id);
  }

  get size(): number {
    return this.jobs.size;
  }

  private prune(): void {
    const cutoff = Date.now() - this.keepMilliseconds;
    // Map iteration is insertion order, so finished jobs come oldest first.
    const finished = [...this.jobs.values()].filter((j) => j.finished);
    let excess = finished.length - this.keepJobs;
    for (const job of finished) {
      if (excess > 0 || (job.finishedAt ?? 0) < cutoff) {
        this.jobs.delete(job.id);
        excess--;
      }
    }
  }
}
