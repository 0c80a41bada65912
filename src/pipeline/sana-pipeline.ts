// Text to image in numbered steps, as diffusers' SanaPipeline.__call__, yielding each denoising step's latents
// (progress, previews and cancellation come free). Each component is loaded when needed and released after, so
// peak memory is the largest component, unless `keepResident` asks to keep them for a server.
// ref: SANA.md §0, §5, §7

import { HostTensor } from '../io/host-tensor.js';
import { FlowScheduler } from '../schedulers/flow-scheduler.js';
import { SchedulerConfig, createScheduler } from '../schedulers/scheduler-config.js';
import { classifierFreeGuidance, concatBatch, repeatRows } from './batch.js';
import { Denoiser, EncodedPrompts, LatentDecoder, PromptEncoder } from './ports.js';
import { GenerateRequest, RequestError, ResolvedRequest, resolveRequest } from './request.js';
import { binResolution, resizeAndCrop } from './resolution.js';
import { denormalize } from './postprocess.js';
import { reportWhileRunning } from './progress-events.js';
import { randnTensor } from '../random/torch-rng.js';

/** How the pipeline gets its components; configs are known up front, weights are loaded on demand. */
export interface PipelineComponents {
  readonly schedulerConfig: SchedulerConfig;
  readonly transformer: { sampleSize: number; latentChannels: number; captionChannels: number };
  readonly vae: { latentChannels: number; scalingFactor: number; compression: number };
  /** Text-encoder width, when the pipeline has one (null for pipelines driven by given embeddings). */
  readonly textHiddenSize: number | null;
  loadPromptEncoder(): Promise<PromptEncoder>;
  loadDenoiser(): Promise<Denoiser>;
  loadDecoder(): Promise<LatentDecoder>;
}

export interface PipelineOptions {
  /** Keep components loaded between calls (a server); default: load, use, release. */
  keepResident?: boolean;
}

/** Prompt embeddings given directly instead of a prompt string (diffusers' prompt_embeds & co). */
export interface GivenEmbeddings {
  promptEmbeds: HostTensor<'float32'>;
  promptMask: HostTensor<'int64'>;
  negativeEmbeds?: HostTensor<'float32'>;
  negativeMask?: HostTensor<'int64'>;
}

export type PipelineStage = 'encode' | 'denoise' | 'decode';

export type PipelineEvent =
  | { type: 'stage'; stage: PipelineStage }
  | { type: 'warning'; message: string }
  /**
   * A denoising step finished: `latents` are the new x_t; `denoised` is this step's estimate of the clean latents
   * (x_t - sigma_t * v, the flow-matching x0 prediction), which decodes to a preview of the final image.
   */
  | { type: 'step'; step: number; total: number; timestep: number; seconds: number; latents: HostTensor<'float32'>; denoised: HostTensor<'float32'> }
  /** A tiled decode finished tile `tile` of `total` (`seconds` for this tile). */
  | { type: 'tile'; tile: number; total: number; seconds: number };

export interface PipelineTimings {
  /** Seconds spent loading each component (included in the stage times below). */
  loadSeconds: { encoder: number; denoiser: number; decoder: number };
  /** Prompt encoding, text encoder load included. */
  encodeSeconds: number;
  /** Transformer load and the once-per-batch caption projection / cross-attention keys and values. */
  prepareSeconds: number;
  stepSeconds: number[];
  decodeSeconds: number;
  totalSeconds: number;
}

export interface PipelineResult {
  /** [N, 3, height, width] in [0, 1], N = prompts x images per prompt. */
  images: HostTensor<'float32'>;
  /** The final latents [N, C, h, w]. */
  latents: HostTensor<'float32'>;
  request: ResolvedRequest;
  /** Size the model generated at (the bin) before resizing back. */
  generatedWidth: number;
  generatedHeight: number;
  timings: PipelineTimings;
  warnings: string[];
}

const now = () => performance.now() / 1000;

export class SanaPipeline {
  private resident: { encoder?: PromptEncoder; denoiser?: Denoiser; decoder?: LatentDecoder } = {};
  private loadSeconds = { encoder: 0, denoiser: 0, decoder: 0 };

  constructor(
    readonly components: PipelineComponents,
    private readonly options: PipelineOptions = {},
  ) {
    const { transformer, vae, textHiddenSize } = components;
    if (transformer.latentChannels !== vae.latentChannels) {
      throw new Error(
        `model mismatch: the transformer works on ${transformer.latentChannels} latent channels but the VAE has ${vae.latentChannels}`,
      );
    }
    if (textHiddenSize !== null && textHiddenSize !== transformer.captionChannels) {
      throw new Error(
        `model mismatch: the text encoder's width is ${textHiddenSize} but the transformer's caption_channels is ${transformer.captionChannels}`,
      );
    }
  }

  /** Runs a request; yields progress events and returns the images. */
  async *generate(req: GenerateRequest, given?: GivenEmbeddings): AsyncGenerator<PipelineEvent, PipelineResult> {
    const { transformer, vae } = this.components;
    const t0 = now();
    this.loadSeconds = { encoder: 0, denoiser: 0, decoder: 0 };
    // 1. Check inputs and pick the size to generate at.
    const request = resolveRequest(req, transformer.sampleSize * vae.compression);
    const size = request.binning
      ? binResolution(transformer.sampleSize, request.height, request.width)
      : { height: request.height, width: request.width };
    const useGuidance = request.guidanceScale > 1;
    const warnings: string[] = [];

    // 2. Encode the prompts (and the negative prompt for classifier-free guidance).
    yield { type: 'stage', stage: 'encode' };
    const encoded = given ? this.checkGiven(given, request, useGuidance) : await this.encode(request, useGuidance);
    for (const w of encoded.warnings) {
      warnings.push(w);
      yield { type: 'warning', message: w };
    }
    const encodeSeconds = now() - t0;
    const n = request.prompts.length * request.numImagesPerPrompt;
    let captionEmbeds = repeatRows(encoded.promptEmbeds, request.numImagesPerPrompt);
    let captionMask = repeatRows(encoded.promptMask, request.numImagesPerPrompt);
    if (useGuidance) {
      // CFG batch order is [negative; positive] (SANA.md §7.3).
      captionEmbeds = concatBatch(repeatRows(encoded.negativeEmbeds!, request.numImagesPerPrompt), captionEmbeds);
      captionMask = concatBatch(repeatRows(encoded.negativeMask!, request.numImagesPerPrompt), captionMask);
    }

    // 3. Timesteps.
    const scheduler = createScheduler(this.components.schedulerConfig, { sampler: request.sampler, flowShift: request.flowShift });
    scheduler.setTimesteps(request.steps);

    // 4. Initial latents: explicit, or torch.randn with a CPU generator seeded like diffusers.
    const latentShape = [n, transformer.latentChannels, size.height / vae.compression, size.width / vae.compression];
    let latents = request.latents ? checkLatents(request.latents, latentShape) : randnTensor(latentShape, request.seed);

    // 5. Denoising loop.
    yield { type: 'stage', stage: 'denoise' };
    const stepSeconds: number[] = [];
    const tp = now();
    const denoiser = await this.acquire('denoiser', () => this.components.loadDenoiser());
    const caption = await denoiser.prepareCaption(captionEmbeds, captionMask);
    const prepareSeconds = now() - tp;
    try {
      for (let i = 0; i < request.steps; i++) {
        const ts = now();
        const { next, denoised } = await this.denoiseStep(denoiser, scheduler, caption, latents, i, request.guidanceScale, useGuidance);
        latents = next;
        stepSeconds.push(now() - ts);
        yield { type: 'step', step: i + 1, total: request.steps, timestep: scheduler.timesteps[i], seconds: stepSeconds[i], latents, denoised };
      }
    } finally {
      caption.release();
      await this.done('denoiser');
    }

    // 6. Decode, resize back to the requested size, map to [0, 1].
    yield { type: 'stage', stage: 'decode' };
    const td = now();
    const decoder = await this.acquire('decoder', () => this.components.loadDecoder());
    let decoded: HostTensor<'float32'>;
    try {
      const scale = Math.fround(vae.scalingFactor);
      const scaled = HostTensor.float32(latents.shape, latents.data.map((v) => v / scale));
      let tileStart = now();
      decoded = yield* reportWhileRunning<PipelineEvent, HostTensor<'float32'>>((report) =>
        decoder.decode(scaled, (tile, total) => {
          const t = now();
          report({ type: 'tile', tile, total, seconds: t - tileStart });
          tileStart = t;
        }),
      );
    } finally {
      await this.done('decoder');
    }
    if (request.binning) decoded = resizeAndCrop(decoded, request.height, request.width);
    const images = denormalize(decoded);
    const decodeSeconds = now() - td;
    return {
      images,
      latents,
      request,
      generatedWidth: size.width,
      generatedHeight: size.height,
      timings: { loadSeconds: { ...this.loadSeconds }, encodeSeconds, prepareSeconds, stepSeconds, decodeSeconds, totalSeconds: now() - t0 },
      warnings,
    };
  }

  /** Loads every component now (a server's start-up), so the first request does not pay for it. */
  async preload(): Promise<void> {
    if (this.components.textHiddenSize !== null) await this.acquire('encoder', () => this.components.loadPromptEncoder());
    await this.acquire('denoiser', () => this.components.loadDenoiser());
    await this.acquire('decoder', () => this.components.loadDecoder());
    if (!this.options.keepResident) await this.release();
  }

  /** Name of the sampler a request runs with ("dpm" or "euler"). */
  samplerName(override?: string): string {
    return override ?? this.components.schedulerConfig.kind;
  }

  /** Runs a request to the end, ignoring progress events. */
  async run(req: GenerateRequest, given?: GivenEmbeddings): Promise<PipelineResult> {
    const it = this.generate(req, given);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /**
   * Decodes latents [N, C, h, w] to images [N, 3, 32h, 32w] in [0, 1] with the pipeline's decoder (kept loaded
   * when the pipeline is resident): previews of a running generation.
   */
  async decodeLatents(latents: HostTensor<'float32'>): Promise<HostTensor<'float32'>> {
    const decoder = await this.acquire('decoder', () => this.components.loadDecoder());
    try {
      const scale = Math.fround(this.components.vae.scalingFactor);
      return denormalize(await decoder.decode(HostTensor.float32(latents.shape, latents.data.map((v) => v / scale))));
    } finally {
      await this.done('decoder');
    }
  }

  async release(): Promise<void> {
    const { encoder, denoiser, decoder } = this.resident;
    this.resident = {};
    await encoder?.release();
    await denoiser?.release();
    await decoder?.release();
  }

  private async encode(request: ResolvedRequest, useGuidance: boolean): Promise<EncodedPrompts> {
    const encoder = await this.acquire('encoder', () => this.components.loadPromptEncoder());
    try {
      return await encoder.encode(request.prompts, request.negativePrompt, {
        maxSequenceLength: request.maxSequenceLength,
        withNegative: useGuidance,
      });
    } finally {
      await this.done('encoder');
    }
  }

  private checkGiven(given: GivenEmbeddings, request: ResolvedRequest, useGuidance: boolean): EncodedPrompts {
    const rows = given.promptEmbeds.shape[0];
    if (rows !== request.prompts.length) {
      throw new RequestError(`prompt embeddings have ${rows} rows for ${request.prompts.length} prompts`);
    }
    if (given.promptEmbeds.shape[2] !== this.components.transformer.captionChannels) {
      throw new RequestError(
        `prompt embeddings have width ${given.promptEmbeds.shape[2]}; the transformer expects ${this.components.transformer.captionChannels}`,
      );
    }
    if (useGuidance && (!given.negativeEmbeds || !given.negativeMask)) {
      throw new RequestError('guidance > 1 needs negative prompt embeddings and mask');
    }
    return { ...given, warnings: [] };
  }

  private async denoiseStep(
    denoiser: Denoiser,
    scheduler: FlowScheduler,
    caption: Awaited<ReturnType<Denoiser['prepareCaption']>>,
    latents: HostTensor<'float32'>,
    index: number,
    guidanceScale: number,
    useGuidance: boolean,
  ): Promise<{ next: HostTensor<'float32'>; denoised: HostTensor<'float32'> }> {
    const input = useGuidance ? concatBatch(latents, latents) : latents;
    const t = Math.fround(scheduler.timesteps[index] * denoiser.timestepScale);
    const timestep = HostTensor.float32([input.shape[0]], new Float32Array(input.shape[0]).fill(t));
    const raw = await denoiser.predict(input, timestep, caption);
    const velocity = useGuidance ? classifierFreeGuidance(raw, guidanceScale) : raw;
    assertFinite(velocity.data, `the transformer output at step ${index + 1}`);
    const sigma = scheduler.sigmas[index];
    const denoised = latents.data.map((x, j) => x - sigma * velocity.data[j]);
    const next = scheduler.step(velocity.data, latents.data);
    assertFinite(next, `the latents after step ${index + 1}`);
    return { next: HostTensor.float32(latents.shape, next), denoised: HostTensor.float32(latents.shape, denoised) };
  }

  private async acquire<K extends keyof SanaPipeline['resident']>(
    key: K,
    load: () => Promise<NonNullable<SanaPipeline['resident'][K]>>,
  ): Promise<NonNullable<SanaPipeline['resident'][K]>> {
    const have = this.resident[key];
    if (have) return have as NonNullable<SanaPipeline['resident'][K]>;
    const tl = now();
    const loaded = await load();
    this.loadSeconds[key] += now() - tl;
    this.resident[key] = loaded;
    return loaded;
  }

  private async done(key: keyof SanaPipeline['resident']): Promise<void> {
    if (this.options.keepResident) return;
    const c = this.resident[key];
    this.resident[key] = undefined;
    await c?.release();
  }
}

function checkLatents(latents: HostTensor<'float32'>, expected: number[]): HostTensor<'float32'> {
  if (latents.dtype !== 'float32') throw new RequestError(`latents must be float32, got ${latents.dtype}`);
  if (latents.shape.length !== 4 || latents.shape.some((d, i) => d !== expected[i])) {
    throw new RequestError(`latents have shape [${latents.shape.join(', ')}]; this request needs [${expected.join(', ')}]`);
  }
  assertFinite(latents.data, 'the given latents');
  return latents;
}

function assertFinite(data: Float32Array, what: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new Error(`${what} contain ${data[i]} (element ${i}); stopping`);
  }
}
