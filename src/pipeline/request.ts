// A text-to-image request, its defaults (diffusers SanaPipeline) and its validation. Every error names the argument
// and what was expected. ref: SANA.md §5.5, §7

import { HostTensor } from '../io/host-tensor.js';
import { SamplerKind } from '../schedulers/scheduler-config.js';
import { TorchSeed } from '../random/torch-rng.js';

export interface GenerateRequest {
  prompts: readonly string[];
  negativePrompt?: string;
  width?: number;
  height?: number;
  steps?: number;
  guidanceScale?: number;
  /** Seed of a torch CPU generator (same images as diffusers on CPU); a random seed is chosen when absent. */
  seed?: TorchSeed;
  /** Explicit initial latents [B * numImagesPerPrompt, C, h, w]; overrides the seed. */
  latents?: HostTensor<'float32'>;
  numImagesPerPrompt?: number;
  /** Aspect-ratio binning (default on): generate at the nearest bin, resize back to width x height. */
  binning?: boolean;
  maxSequenceLength?: number;
  sampler?: SamplerKind;
  flowShift?: number;
}

export interface ResolvedRequest {
  prompts: readonly string[];
  negativePrompt: string;
  width: number;
  height: number;
  steps: number;
  guidanceScale: number;
  seed: TorchSeed;
  latents?: HostTensor<'float32'>;
  numImagesPerPrompt: number;
  binning: boolean;
  maxSequenceLength: number;
  sampler?: SamplerKind;
  flowShift?: number;
}

export const MIN_SIZE = 32;
export const MAX_SIZE = 8192;

export class RequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestError';
  }
}

function positiveInt(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new RequestError(`${what} must be a positive integer, got ${v}`);
  return v;
}

export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}

/** Fills defaults and validates; `defaultSize` is the model's native size (sample_size * 32). */
export function resolveRequest(req: GenerateRequest, defaultSize: number): ResolvedRequest {
  if (!req.prompts.length) throw new RequestError('give at least one prompt');
  for (const p of req.prompts) if (typeof p !== 'string') throw new RequestError('prompts must be strings');
  const binning = req.binning ?? true;
  const width = req.width ?? defaultSize;
  const height = req.height ?? defaultSize;
  for (const [name, v] of [['width', width], ['height', height]] as const) {
    if (!Number.isSafeInteger(v) || v < MIN_SIZE || v > MAX_SIZE) {
      throw new RequestError(`${name} must be an integer from ${MIN_SIZE} to ${MAX_SIZE}, got ${v}`);
    }
    if (!binning && v % 32 !== 0) {
      throw new RequestError(`${name} must be a multiple of 32 when resolution binning is off, got ${v}`);
    }
  }
  const steps = positiveInt(req.steps ?? 20, 'steps');
  const guidanceScale = req.guidanceScale ?? 4.5;
  if (!Number.isFinite(guidanceScale) || guidanceScale < 0) throw new RequestError(`guidance must be a number >= 0, got ${guidanceScale}`);
  const numImagesPerPrompt = positiveInt(req.numImagesPerPrompt ?? 1, 'number of images per prompt');
  const maxSequenceLength = positiveInt(req.maxSequenceLength ?? 300, 'max sequence length');
  if (req.flowShift !== undefined && !(req.flowShift > 0)) throw new RequestError(`flow shift must be > 0, got ${req.flowShift}`);
  return {
    prompts: req.prompts,
    negativePrompt: req.negativePrompt ?? '',
    width,
    height,
    steps,
    guidanceScale,
    seed: req.seed ?? randomSeed(),
    latents: req.latents,
    numImagesPerPrompt,
    binning,
    maxSequenceLength,
    sampler: req.sampler,
    flowShift: req.flowShift,
  };
}
