// One generation job: its parameters (seed fixed at submission), where it stands, its images, and the events its
// watchers (server-sent event streams, waiting OpenAI requests) follow. ref: docs/server.md "GET /api/jobs/:id"

import { randomBytes } from 'node:crypto';
import { ResolvedRequest } from '../pipeline/request.js';
import { PipelineStage } from '../pipeline/sana-pipeline.js';

export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export type JobEventName = 'queued' | 'started' | 'stage' | 'step' | 'done' | 'error' | 'cancelled';
export interface JobEvent {
  event: JobEventName;
  data: unknown;
}

export interface JobImage {
  index: number;
  prompt: string;
  seed: string;
  width: number;
  height: number;
  /** The PNG file, settings in its text chunks. */
  png: Buffer;
}

export interface JobTimings {
  queuedSeconds: number;
  encodeSeconds: number;
  denoiseSeconds: number;
  decodeSeconds: number;
  totalSeconds: number;
}

export interface JobOutcome {
  images: JobImage[];
  generatedWidth: number;
  generatedHeight: number;
  timings: Omit<JobTimings, 'queuedSeconds'>;
  warnings: readonly string[];
}

const TERMINAL: ReadonlySet<JobStatus> = new Set(['done', 'failed', 'cancelled']);

/** A fresh random job id (also a valid BullMQ job id: not an integer, no ":"). */
export const newJobId = () => `j_${randomBytes(12).toString('base64url')}`;

export class Job {
  readonly createdAt = Date.now();
  status: JobStatus = 'queued';
  stage: PipelineStage | null = null;
  step = 0;
  images: JobImage[] = [];
  warnings: readonly string[] = [];
  error: string | null = null;
  timings: JobTimings | null = null;
  generatedWidth: number | null = null;
  generatedHeight: number | null = null;
  startedAt: number | null = null;
  finishedAt: number | null = null;
  /** Set by a cancel; the runner stops at the next step. */
  cancelRequested = false;
  /** What made the job fail (the thrown value), so a queue can tell bad input (not retried) from other failures. */
  failureCause: unknown = undefined;
  /** What the last `started` event said, for a watcher that connects later. */
  startDetail: Record<string, unknown> = {};
  private readonly listeners = new Set<(e: JobEvent) => void>();
  private readonly finishedSignal: Promise<void>;
  private signalFinished!: () => void;

  constructor(
    readonly modelId: string,
    readonly request: ResolvedRequest,
    /** The sampler the job runs with, resolved against the model's scheduler. */
    readonly sampler: string,
    /** Send step previews to event streams. */
    readonly preview: boolean,
    /** Given when the id is fixed elsewhere: an idempotency key's job, or a worker's copy of a queued job. */
    readonly id: string = newJobId(),
  ) {
    this.finishedSignal = new Promise((resolve) => (this.signalFinished = resolve));
  }

  get finished(): boolean {
    return TERMINAL.has(this.status);
  }

  get imageCount(): number {
    return this.request.prompts.length * this.request.numImagesPerPrompt;
  }

  /** Resolves once the job is done, failed or cancelled. */
  whenFinished(): Promise<void> {
    return this.finishedSignal;
  }

  /** Follows the job's events; returns the unsubscribe function. */
  subscribe(listener: (e: JobEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: JobEventName, data: unknown): void {
    for (const l of this.listeners) l({ event, data });
  }

  /** `detail`: what the stream's `started` event says besides (on Redis: which worker took the job). */
  start(detail: Record<string, unknown> = {}): void {
    this.startDetail = detail;
    this.status = 'running';
    this.startedAt = Date.now();
    this.emit('started', detail);
  }

  setStage(stage: PipelineStage): void {
    this.stage = stage;
    this.emit('stage', { stage });
  }

  setStep(step: number, seconds: number, preview?: string): void {
    this.step = step;
    this.emit('step', { step, total: this.request.steps, seconds, ...(preview ? { preview } : {}) });
  }

  complete(outcome: JobOutcome): void {
    this.images = outcome.images;
    this.generatedWidth = outcome.generatedWidth;
    this.generatedHeight = outcome.generatedHeight;
    this.warnings = outcome.warnings;
    this.timings = { queuedSeconds: this.queuedSeconds(), ...outcome.timings };
    this.finish('done');
    this.emit('done', this.toJSON(null));
  }

  fail(message: string, cause?: unknown): void {
    this.error = message;
    this.failureCause = cause;
    this.finish('failed');
    this.emit('error', { message });
  }

  cancel(): void {
    this.finish('cancelled');
    this.emit('cancelled', {});
  }

  /** What the job was asked for, in the native API's field names. */
  parameters() {
    const r = this.request;
    return {
      prompt: [...r.prompts],
      negative: r.negativePrompt,
      steps: r.steps,
      guidance: r.guidanceScale,
      seed: String(r.seed),
      width: r.width,
      height: r.height,
      noBinning: !r.binning,
      sampler: this.sampler,
      flowShift: r.flowShift ?? null,
      numImages: r.numImagesPerPrompt,
      maxSequenceLength: r.maxSequenceLength,
      // the images themselves are not echoed back; whether there were any, and their settings, are
      image: Boolean(r.image),
      strength: r.strength ?? null,
      mask: Boolean(r.mask),
      controlImage: Boolean(r.controlImage),
      controlScale: r.controlScale ?? null,
      pagScale: r.pagScale,
      pagLayers: [...r.pagLayers],
      pagAdaptiveScale: r.pagAdaptiveScale,
      maxTimesteps: r.maxTimesteps ?? null,
      intermediateTimesteps: r.intermediateTimesteps ?? null,
    };
  }

  toJSON(position: number | null) {
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      id: this.id,
      model: this.modelId,
      status: this.status,
      position: this.status === 'queued' ? position : null,
      progress: { stage: this.stage, step: this.step, total: this.request.steps },
      parameters: this.parameters(),
      generatedWidth: this.generatedWidth,
      generatedHeight: this.generatedHeight,
      timings: this.timings,
      images: this.images.map(({ index, prompt, seed, width, height }) => ({
        index,
        url: `/api/jobs/${this.id}/images/${index}`,
        prompt,
        seed,
        width,
        height,
      })),
      warnings: [...this.warnings],
      error: this.error,
      createdAt: iso(this.createdAt),
      startedAt: iso(this.startedAt),
      finishedAt: iso(this.finishedAt),
    };
  }

  private queuedSeconds(): number {
    return ((this.startedAt ?? Date.now()) - this.createdAt) / 1000;
  }

  private finish(status: JobStatus): void {
    this.status = status;
    this.finishedAt = Date.now();
    this.signalFinished();
  }
}
