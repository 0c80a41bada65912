// Text to image in numbered steps, as diffusers' SanaPipeline.__call__, yielding each denoising step's latents
// (progress, previews and cancellation come free). Each component is loaded when needed and released after, so
// peak memory is the largest component, unless `keepResident` asks to keep them for a server.
// ref: SANA.md §0, §5, §7

import { HostTensor } from '../io/host-tensor.js';
import { TorchGenerator, torchRandn } from '../random/torch-rng.js';
import { SchedulerConfig, createScheduler } from '../schedulers/scheduler-config.js';
import { SCM_DEFAULTS, ScmScheduler } from '../schedulers/scm.js';
import { repeatRows } from './batch.js';
import { Guidance, cfgGuidance, embeddedGuidance, noGuidance, pagGuidance, resolvePagLayers } from './guidance.js';
import { blend, keptLatentCells, pasteKeptPixels } from './inpaint.js';
import { ControlNet, Denoiser, EncodedPrompts, ImageEncoder, LatentDecoder, PromptEncoder } from './ports.js';
import { GenerateRequest, RequestError, ResolvedRequest, resolveRequest } from './request.js';
import { atSize, binResolution, resizeAndCrop } from './resolution.js';
import { denormalize } from './postprocess.js';
import { checkFinite, flatImageWarnings } from './output-checks.js';
import { reportWhileRunning } from './progress-events.js';
import { FlowSampling, Sampling, ScmSampling } from './sampling.js';

/** How the pipeline gets its components; configs are known up front, weights are loaded on demand. */
export interface PipelineComponents {
  readonly schedulerConfig: SchedulerConfig;
  readonly transformer: {
    sampleSize: number;
    latentChannels: number;
    captionChannels: number;
    numLayers: number;
    /** Multiplier of the flow timestep the transformer is fed (config timestep_scale). */
    timestepScale: number;
    /** SANA-Sprint: guidance is an input of the model, scaled by guidanceEmbedsScale. */
    guidanceEmbeds: boolean;
    guidanceEmbedsScale: number;
  };
  readonly vae: { latentChannels: number; scalingFactor: number; compression: number };
  /** Text-encoder width, when the pipeline has one (null for pipelines driven by given embeddings). */
  readonly textHiddenSize: number | null;
  loadPromptEncoder(): Promise<PromptEncoder>;
  loadDenoiser(): Promise<Denoiser>;
  loadDecoder(): Promise<LatentDecoder>;
  /** The VAE encoder, for image-to-image and inpainting starts and ControlNet control images. */
  loadImageEncoder(): Promise<ImageEncoder>;
  /** A SanaControlNetPipeline's ControlNet. */
  readonly hasControlNet?: boolean;
  loadControlNet?(): Promise<ControlNet>;
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
  loadSeconds: { encoder: number; denoiser: number; decoder: number; imageEncoder: number; controlnet: number };
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
  private resident: { encoder?: PromptEncoder; denoiser?: Denoiser; decoder?: LatentDecoder; imageEncoder?: ImageEncoder; controlnet?: ControlNet } = {};
  private loadSeconds = { encoder: 0, denoiser: 0, decoder: 0, imageEncoder: 0, controlnet: 0 };

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
    this.loadSeconds = { encoder: 0, denoiser: 0, decoder: 0, imageEncoder: 0, controlnet: 0 };
    // 1. Check inputs, pick the size to generate at and the strategies (sampler, guidance, start).
    const sprint = this.components.schedulerConfig.kind === 'scm';
    const request = resolveRequest(req, transformer.sampleSize * vae.compression, { steps: sprint ? 2 : 20 });
    const size = request.binning
      ? binResolution(transformer.sampleSize, request.height, request.width)
      : { height: request.height, width: request.width };
    const n = request.prompts.length * request.numImagesPerPrompt;
    const generator = new TorchGenerator(request.seed);
    const sampling = this.sampling(request, generator);
    const guidance = this.guidance(request);
    const warnings: string[] = [];

    // 2. Encode the prompts (and the negative prompt when the guidance uses it).
    yield { type: 'stage', stage: 'encode' };
    const encoded = given ? this.checkGiven(given, request, guidance.needsNegative) : await this.encode(request, guidance.needsNegative);
    for (const w of encoded.warnings) {
      warnings.push(w);
      yield { type: 'warning', message: w };
    }
    const source = given ? 'the given' : "the text encoder's";
    checkFinite(encoded.promptEmbeds.data, `${source} prompt embeddings`, encoded.promptEmbeds.shape);
    if (guidance.needsNegative) checkFinite(encoded.negativeEmbeds!.data, `${source} negative prompt embeddings`, encoded.negativeEmbeds!.shape);
    const perImage = (e: HostTensor<'float32'>, m: HostTensor<'int64'>) => ({
      embeds: repeatRows(e, request.numImagesPerPrompt),
      mask: repeatRows(m, request.numImagesPerPrompt),
    });
    const captions = guidance.captionBatch(
      perImage(encoded.promptEmbeds, encoded.promptMask),
      guidance.needsNegative ? perImage(encoded.negativeEmbeds!, encoded.negativeMask!) : undefined,
    );
    const encodeSeconds = now() - t0;

    // 3. The starting latents: given, or drawn from the call's generator (torch.randn, as diffusers on CPU), or the
    //    start image noised to the time where its cut schedule begins.
    const latentShape = [n, transformer.latentChannels, size.height / vae.compression, size.width / vae.compression];
    // notices of the VAE encoder (a start or control image too large to encode untiled runs in tiles)
    const encoderNotices: string[] = [];
    const start = request.image ? await this.imageStart(request, size, latentShape, sampling, generator, encoderNotices) : undefined;
    let latents = start
      ? HostTensor.float32(latentShape, start.x)
      : HostTensor.float32(latentShape, sampling.initial(request.latents ? checkLatents(request.latents, latentShape).data : torchRandn(latentShape, generator).data));

    // ControlNet: the control image's scaled latents, one row per model-batch row.
    const control = await this.controlLatents(request, size, latentShape, guidance, encoderNotices);
    for (const w of encoderNotices) {
      warnings.push(w);
      yield { type: 'warning', message: w };
    }

    // 4. Denoising loop.
    yield { type: 'stage', stage: 'denoise' };
    const stepSeconds: number[] = [];
    const tp = now();
    const denoiser = await this.acquire('denoiser', () => this.components.loadDenoiser());
    const caption = await denoiser.prepareCaption(captions.embeds, captions.mask);
    const controlnet = control ? await this.acquire('controlnet', () => this.components.loadControlNet!()) : undefined;
    const controlCaption = controlnet ? await controlnet.prepareCaption(captions.embeds, captions.mask) : undefined;
    const prepareSeconds = now() - tp;
    let denoised = latents.data;
    try {
      for (let i = sampling.beginIndex; i < sampling.total; i++) {
        const ts = now();
        const input = sampling.modelInput(latents, i);
        const batch = guidance.inputBatch(input.latent);
        const timestep = HostTensor.float32([batch.shape[0]], new Float32Array(batch.shape[0]).fill(input.timestep));
        const extras = guidance.extras(n);
        if (controlnet && control) {
          extras.blockResiduals = await controlnet.residuals(batch, timestep, control, request.controlScale!, controlCaption!);
          extras.blockResiduals.forEach((r, k) => checkFinite(r.data, `the ControlNet residual ${k} at step ${i + 1}`, r.shape));
        }
        const raw = await denoiser.predict(batch, timestep, caption, extras);
        checkFinite(raw.data, `the transformer output at step ${i + 1}`, raw.shape);
        const output = guidance.combine(raw, sampling.timeAt(i));
        checkFinite(output.data, `the guided velocity at step ${i + 1}`, output.shape);
        const stepped = sampling.step(output.data, latents.data, i);
        let next = stepped.next;
        // Inpainting: the kept region follows the start image, noised to the time the step arrived at.
        if (start?.keep) next = blend(next, sampling.noised(start.clean, start.noise, i + 1), start.keep);
        checkFinite(next, `the sampler's latents after step ${i + 1}`, latentShape);
        latents = HostTensor.float32(latentShape, next);
        denoised = stepped.denoised;
        stepSeconds.push(now() - ts);
        yield {
          type: 'step',
          step: i + 1 - sampling.beginIndex,
          total: sampling.total - sampling.beginIndex,
          timestep: sampling.timeAt(i),
          seconds: stepSeconds[stepSeconds.length - 1],
          latents,
          denoised: HostTensor.float32(latentShape, denoised),
        };
      }
    } finally {
      caption.release();
      controlCaption?.release();
      await this.done('denoiser');
      if (controlnet) await this.done('controlnet');
    }
    const finalLatents = HostTensor.float32(latentShape, sampling.final(latents.data, denoised));

    // 5. Decode, resize back to the requested size, map to [0, 1]; inpainting puts the kept pixels back exactly.
    yield { type: 'stage', stage: 'decode' };
    const td = now();
    const decoder = await this.acquire('decoder', () => this.components.loadDecoder());
    let decoded: HostTensor<'float32'>;
    try {
      const scale = Math.fround(vae.scalingFactor);
      const scaled = HostTensor.float32(finalLatents.shape, finalLatents.data.map((v) => v / scale));
      let tileStart = now();
      decoded = yield* reportWhileRunning<PipelineEvent, HostTensor<'float32'>>((report) =>
        decoder.decode(
          scaled,
          (tile, total) => {
            const t = now();
            report({ type: 'tile', tile, total, seconds: t - tileStart });
            tileStart = t;
          },
          (notice) => {
            warnings.push(notice);
            report({ type: 'warning', message: notice });
          },
        ),
      );
    } finally {
      await this.done('decoder');
    }
    // before the [0, 1] clamp, which would turn NaN into black and Infinity into white
    checkFinite(decoded.data, 'the VAE decoder output', decoded.shape);
    if (request.binning) decoded = resizeAndCrop(decoded, request.height, request.width);
    let images = denormalize(decoded);
    if (request.mask && request.image) images = pasteKeptPixels(images, request.image, request.mask);
    for (const w of flatImageWarnings(images)) {
      warnings.push(w);
      yield { type: 'warning', message: w };
    }
    const decodeSeconds = now() - td;
    return {
      images,
      latents: finalLatents,
      request,
      generatedWidth: size.width,
      generatedHeight: size.height,
      timings: { loadSeconds: { ...this.loadSeconds }, encodeSeconds, prepareSeconds, stepSeconds, decodeSeconds, totalSeconds: now() - t0 },
      warnings,
    };
  }

  /** The sampler strategy: the model's flow scheduler (or the requested one), or Sprint's TrigFlow sampler. */
  private sampling(request: ResolvedRequest, generator: TorchGenerator): Sampling {
    const config = this.components.schedulerConfig;
    if (config.kind === 'scm') {
      if (request.sampler) throw new RequestError(`this model samples with SCMScheduler (SANA-Sprint); a sampler (${request.sampler}) cannot be chosen`);
      if (request.flowShift !== undefined) throw new RequestError('flow shift does not apply to a SANA-Sprint model (SCMScheduler)');
      const scheduler = new ScmScheduler({ numTrainTimesteps: config.numTrainTimesteps, sigmaData: config.sigmaData });
      // diffusers' intermediate time 1.3 belongs to the 2-step schedule; other step counts use evenly spaced times
      const intermediate = request.intermediateTimesteps !== undefined ? request.intermediateTimesteps : request.steps === 2 ? SCM_DEFAULTS.intermediateTimesteps : null;
      try {
        return new ScmSampling(scheduler, request.steps, { maxTimesteps: request.maxTimesteps, intermediateTimesteps: intermediate }, generator);
      } catch (e) {
        throw new RequestError((e as Error).message);
      }
    }
    if (request.maxTimesteps !== undefined || request.intermediateTimesteps !== undefined) {
      throw new RequestError('max / intermediate timesteps apply to SANA-Sprint models (SCMScheduler) only');
    }
    const scheduler = createScheduler(config, { sampler: request.sampler, flowShift: request.flowShift });
    scheduler.setTimesteps(request.steps);
    return new FlowSampling(scheduler, this.components.transformer.timestepScale);
  }

  /** The guidance strategy: Sprint's embedded guidance, PAG, classifier-free guidance (g > 1), or none. */
  private guidance(request: ResolvedRequest): Guidance {
    const t = this.components.transformer;
    if (t.guidanceEmbeds) {
      if (request.pagScale > 0) throw new RequestError('PAG needs a classifier-free-guidance model; this one embeds guidance (SANA-Sprint)');
      return embeddedGuidance(request.guidanceScale, t.guidanceEmbedsScale);
    }
    if (request.pagScale > 0) {
      if (!request.pagLayers.length) throw new RequestError('PAG needs the layers to perturb (e.g. "transformer_blocks.8")');
      let layers: number[];
      try {
        layers = resolvePagLayers(request.pagLayers, t.numLayers);
      } catch (e) {
        throw new RequestError((e as Error).message);
      }
      return pagGuidance(request.guidanceScale, request.pagScale, layers, request.pagAdaptiveScale);
    }
    return request.guidanceScale > 1 ? cfgGuidance(request.guidanceScale) : noGuidance;
  }

  /** The control image resized to the generated size, encoded and scaled, repeated for the model batch. */
  private async controlLatents(
    request: ResolvedRequest,
    size: { height: number; width: number },
    latentShape: number[],
    guidance: Guidance,
    notices: string[],
  ) {
    if (!this.components.hasControlNet) {
      if (request.controlImage) throw new RequestError('a control image needs a ControlNet pipeline (a model folder with a controlnet component)');
      return undefined;
    }
    if (!request.controlImage) throw new RequestError('this is a ControlNet pipeline: give a control image');
    const one = HostTensor.float32([1, ...latentShape.slice(1)], await this.encodeImage(request.controlImage, size, notices));
    return guidance.inputBatch(repeatRows(one, latentShape[0]));
  }

  /** An image [1, 3, H, W] in [0, 1] at the generated size, encoded by the VAE: latents x scaling_factor. */
  private async encodeImage(image: HostTensor<'float32'>, size: { height: number; width: number }, notices: string[]): Promise<Float32Array> {
    const sized = atSize(image, size.height, size.width);
    const encoder = await this.acquire('imageEncoder', () => this.components.loadImageEncoder());
    let latent: HostTensor<'float32'>;
    try {
      latent = await encoder.encode(
        HostTensor.float32(sized.shape, sized.data.map((v) => Math.fround(2 * v - 1))),
        (notice) => notices.push(notice),
      );
    } finally {
      await this.done('imageEncoder');
    }
    checkFinite(latent.data, 'the VAE encoder output', latent.shape);
    const scale = Math.fround(this.components.vae.scalingFactor);
    return latent.data.map((v) => Math.fround(v * scale));
  }

  /**
   * Image-to-image and inpainting: the start image (resized to the generated size) encoded to scaled latents,
   * noised to the first time of the schedule cut by strength with the generator's first draw. With a mask, the
   * latent cells any of whose pixels are to be repainted are free; the others are kept.
   */
  private async imageStart(
    request: ResolvedRequest,
    size: { height: number; width: number },
    latentShape: number[],
    sampling: Sampling,
    generator: TorchGenerator,
    notices: string[],
  ): Promise<{ x: Float32Array; clean: Float32Array; noise: Float32Array; keep?: Float32Array }> {
    // scaling_factor, and for TrigFlow sampling sigma_data as well (SanaSprintImg2ImgPipeline)
    const sigmaData = this.components.schedulerConfig.kind === 'scm' ? Math.fround(this.components.schedulerConfig.sigmaData) : 1;
    const one = (await this.encodeImage(request.image!, size, notices)).map((v) => Math.fround(v * sigmaData));
    const clean = repeatRows(HostTensor.float32([1, ...latentShape.slice(1)], one), latentShape[0]).data;
    const noise = torchRandn(latentShape, generator).data;
    sampling.startAtStrength(request.strength!);
    const x = sampling.noised(clean, noise, sampling.beginIndex);
    const keep = request.mask ? keptLatentCells(request.mask, size, latentShape) : undefined;
    return { x, clean, noise, keep };
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
    const { encoder, denoiser, decoder, imageEncoder, controlnet } = this.resident;
    this.resident = {};
    await controlnet?.release();
    await encoder?.release();
    await denoiser?.release();
    await decoder?.release();
    await imageEncoder?.release();
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
  checkFinite(latents.data, 'the given latents', latents.shape);
  return latents;
}
