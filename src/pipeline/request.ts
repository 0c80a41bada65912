// A text-to-image request, its defaults (diffusers SanaPipeline) and its validation. Every error names the argument
// and what was expected. ref: SANA.md §5.5, §7

import { HostTensor } from '../io/host-tensor.js';
import { SamplerKind } from '../schedulers/scheduler-config.js';
import { TorchSeed, normaliseSeed } from '../random/torch-rng.js';
import { LIMITS, LimitError, MIN_SEQUENCE_LENGTH, MIN_SIZE, checkBounded, checkImageMemory, checkPromptLength } from '../limits.js';

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
  /** Image-to-image / inpainting: the start image [1, 3, H, W] in [0, 1] (resized to the generated size). */
  image?: HostTensor<'float32'>;
  /** Share of the schedule run on the noised start image, in (0, 1] (default 0.6; 1 with a mask). */
  strength?: number;
  /** Inpainting: [1, 1, H, W] in [0, 1], 1 (white) = repaint, 0 = keep. Needs an image. */
  mask?: HostTensor<'float32'>;
  /** Perturbed-attention guidance scale (0 = off) and the blocks it perturbs (regular expressions). */
  pagScale?: number;
  pagLayers?: readonly string[];
  /** PAG scale decay: pag_scale - a (1000 - t), at least 0 (default 0: constant). */
  pagAdaptiveScale?: number;
  /** SANA-Sprint (SCMScheduler) schedule: the first TrigFlow time, and the middle one of 2 steps (null = linspace). */
  maxTimesteps?: number;
  intermediateTimesteps?: number | null;
  /** ControlNet pipelines: the control image [1, 3, H, W] in [0, 1] and the residuals' scale (default 1). */
  controlImage?: HostTensor<'float32'>;
  controlScale?: number;
}

/** What a request leaves to the pipeline that depends on the model (Sprint's few steps). */
export interface RequestDefaults {
  steps: number;
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
  image?: HostTensor<'float32'>;
  /** Set when an image is given. */
  strength?: number;
  mask?: HostTensor<'float32'>;
  pagScale: number;
  pagLayers: readonly string[];
  pagAdaptiveScale: number;
  maxTimesteps?: number;
  intermediateTimesteps?: number | null;
  controlImage?: HostTensor<'float32'>;
  /** Set when a control image is given. */
  controlScale?: number;
}

export { MIN_SIZE };
export const MAX_SIZE = LIMITS.size.max;

export class RequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestError';
  }
}

/** A count within its limit (src/limits.ts), as a RequestError naming the field. */
function bounded(v: number, what: string, limit: (typeof LIMITS)[keyof typeof LIMITS], min = 1): number {
  return asRequestError(() => checkBounded(what, v, limit, min));
}

function asRequestError<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof LimitError) throw new RequestError(e.message);
    throw e;
  }
}

export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}

/** Fills defaults and validates; `defaultSize` is the model's native size (sample_size * 32). */
export function resolveRequest(req: GenerateRequest, defaultSize: number, defaults: RequestDefaults = { steps: 20 }): ResolvedRequest {
  checkRequestTypes(req);
  if (!req.prompts.length) throw new RequestError('give at least one prompt');
  for (const p of req.prompts) if (typeof p !== 'string') throw new RequestError('prompts must be strings');
  // every size before any work: the prompt lengths first, so a huge prompt is never tokenized
  bounded(req.prompts.length, 'the number of prompts', LIMITS.prompts);
  req.prompts.forEach((p, i) => asRequestError(() => checkPromptLength(req.prompts.length > 1 ? `prompt ${i}` : 'the prompt', p)));
  if (req.negativePrompt !== undefined) asRequestError(() => checkPromptLength('the negative prompt', req.negativePrompt!));
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
  const steps = bounded(req.steps ?? defaults.steps, 'steps', LIMITS.steps);
  const guidanceScale = req.guidanceScale ?? 4.5;
  if (!Number.isFinite(guidanceScale) || guidanceScale < 0) throw new RequestError(`guidance must be a number >= 0, got ${guidanceScale}`);
  const numImagesPerPrompt = bounded(req.numImagesPerPrompt ?? 1, 'number of images per prompt', LIMITS.imagesPerPrompt);
  const images = req.prompts.length * numImagesPerPrompt;
  if (images > LIMITS.images.max) {
    throw new RequestError(
      `${req.prompts.length} prompts x ${numImagesPerPrompt} images per prompt = ${images} images; at most ${LIMITS.images.max} are made in one call (${LIMITS.images.why})`,
    );
  }
  asRequestError(() => checkImageMemory(images, width, height));
  const maxSequenceLength = bounded(req.maxSequenceLength ?? 300, 'max sequence length', LIMITS.maxSequenceLength, MIN_SEQUENCE_LENGTH);
  if (req.flowShift !== undefined && !(req.flowShift > 0)) throw new RequestError(`flow shift must be > 0, got ${req.flowShift}`);
  checkStartImage(req);
  const pagScale = req.pagScale ?? 0;
  if (!Number.isFinite(pagScale) || pagScale < 0) throw new RequestError(`PAG scale must be a number >= 0, got ${pagScale}`);
  const adaptive = req.pagAdaptiveScale ?? 0;
  if (!Number.isFinite(adaptive) || adaptive < 0) throw new RequestError(`PAG adaptive scale must be a number >= 0, got ${adaptive}`);
  for (const [name, v] of [['max timesteps', req.maxTimesteps], ['intermediate timesteps', req.intermediateTimesteps]] as const) {
    if (v !== undefined && v !== null && !(Number.isFinite(v) && v > 0 && v <= Math.PI / 2 + 1e-3)) {
      throw new RequestError(`${name} must be a TrigFlow time in (0, pi/2], got ${v}`);
    }
  }
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
    image: req.image,
    strength: req.image ? (req.strength ?? (req.mask ? 1 : 0.6)) : undefined,
    mask: req.mask,
    pagScale,
    pagLayers: req.pagLayers ?? [],
    pagAdaptiveScale: req.pagAdaptiveScale ?? 0,
    maxTimesteps: req.maxTimesteps,
    intermediateTimesteps: req.intermediateTimesteps,
    controlImage: req.controlImage,
    controlScale: req.controlImage ? (req.controlScale ?? 1) : undefined,
  };
}

function checkStartImage(req: GenerateRequest): void {
  if (req.strength !== undefined && !req.image) throw new RequestError('strength needs a start image (image-to-image)');
  if (req.strength !== undefined && !(req.strength > 0 && req.strength <= 1)) {
    throw new RequestError(`strength must be in (0, 1], got ${req.strength}`);
  }
  if (req.mask && !req.image) throw new RequestError('an inpainting mask needs the image to inpaint');
  if (req.controlScale !== undefined && !req.controlImage) throw new RequestError('a control scale needs a control image');
  if (req.controlScale !== undefined && !Number.isFinite(req.controlScale)) throw new RequestError(`control scale must be a number, got ${req.controlScale}`);
  for (const [what, t, channels] of [['start image', req.image, 3], ['mask', req.mask, 1], ['control image', req.controlImage, 3]] as const) {
    if (!t) continue;
    if (t.dtype !== 'float32' || t.shape.length !== 4 || t.shape[0] !== 1 || t.shape[1] !== channels) {
      throw new RequestError(`the ${what} must be float32 [1, ${channels}, H, W], got ${t.dtype} [${t.shape.join(', ')}]`);
    }
    for (let i = 0; i < t.data.length; i++) {
      if (!(t.data[i] >= 0 && t.data[i] <= 1)) throw new RequestError(`the ${what} must hold values in [0, 1]; element ${i} is ${t.data[i]}`);
    }
  }
  if (req.image && req.mask && (req.image.shape[2] !== req.mask.shape[2] || req.image.shape[3] !== req.mask.shape[3])) {
    throw new RequestError(
      `the mask is ${req.mask.shape[3]}x${req.mask.shape[2]} but the image is ${req.image.shape[3]}x${req.image.shape[2]}; they must be the same size`,
    );
  }
}

/**
 * The types the library's callers may get wrong from JavaScript (or a JSON body): each field is what its declaration
 * says, or the request is refused naming it. Without this a string "2" passes `flowShift > 0`, an object without a
 * shape as the start image throws a TypeError, and a seed of 1.5 a RangeError deep in the generator.
 */
function checkRequestTypes(req: GenerateRequest): void {
  if (typeof req !== 'object' || req === null) throw new RequestError('a request must be an object');
  if (!Array.isArray(req.prompts)) throw new RequestError('prompts must be a list of strings');
  const optional = (name: string, v: unknown, ok: boolean, expected: string) => {
    if (v !== undefined && !ok) throw new RequestError(`${name} must be ${expected}, got ${describeValue(v)}`);
  };
  optional('negative prompt', req.negativePrompt, typeof req.negativePrompt === 'string', 'a string');
  optional('binning', req.binning, typeof req.binning === 'boolean', 'true or false');
  optional('sampler', req.sampler, req.sampler === 'dpm' || req.sampler === 'euler', '"dpm" or "euler"');
  for (const [name, v] of [['flow shift', req.flowShift], ['strength', req.strength], ['guidance', req.guidanceScale]] as const) {
    optional(name, v, typeof v === 'number' && Number.isFinite(v), 'a finite number');
  }
  // null is not "the default": a caller that sends it has a bug worth naming
  const integers = [
    ['width', req.width],
    ['height', req.height],
    ['steps', req.steps],
    ['number of images per prompt', req.numImagesPerPrompt],
    ['max sequence length', req.maxSequenceLength],
  ] as const;
  for (const [name, v] of integers) optional(name, v, typeof v === 'number', 'an integer');
  for (const [name, t] of [['latents', req.latents], ['start image', req.image], ['mask', req.mask]] as const) {
    optional(name, t, t instanceof HostTensor, 'a tensor');
  }
  const layers = req.pagLayers;
  optional('PAG layers', layers, Array.isArray(layers) && layers.every((l) => typeof l === 'string' && compiles(l)), 'a list of regular expressions');
  if (req.seed !== undefined) {
    optional('seed', req.seed, typeof req.seed === 'number' || typeof req.seed === 'bigint', 'an integer');
    try {
      normaliseSeed(req.seed);
    } catch (e) {
      throw new RequestError(e instanceof Error ? e.message : `seed: ${describeValue(req.seed)} is not a seed`);
    }
  }
}

function compiles(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return Array.isArray(v) ? 'a list' : typeof v;
}
