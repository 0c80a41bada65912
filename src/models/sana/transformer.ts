// SanaTransformer2DModel on ONNX Runtime: strict loading from a diffusers folder, caption K/V caching (caption
// graph once per image, denoise graph once per step) and the one-shot forward.
// ref: SANA.md §1, §2

import { HostTensor } from '../../io/host-tensor.js';
import { WeightStore, findWeights } from '../../io/weights.js';
import { LoraSet } from '../../nn/lora.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { Backend, ModelSession, SessionValue, isDeviceTensor } from '../../runtime/backend.js';
import { compileGraph } from '../../runtime/compile.js';
import { defaultBackend } from '../../runtime/node-backend.js';
import { LoadOptions } from '../component.js';
import { SanaTransformerConfig, readSanaTransformerConfig, sanaDims } from './config.js';
import { sincosPositionTable } from './embeddings.js';
import { BuiltGraph, CROSS_BIAS, PAG_ROWS, POSITION_TABLE, SanaGraphOptions, blockResidualName, buildCaptionGraph, buildDenoiseGraph, crossKeyName, crossValueName } from './graphs.js';
import { Int8Activations, int8LinearProvider, int8WeightSettings } from '../../nn/int8-linear.js';
import { defaultWeightCacheDirs, withWeightCache } from '../../nn/weight-cache.js';

export interface SanaTransformerOptions extends LoadOptions {
  /** Output every reference module's result too (parity tests); see SanaGraphOptions. */
  debugOutputs?: boolean;
  /** ONNX Runtime flavour; default onnxruntime-node. */
  backend?: Backend;
  /** LoRA adapters for the linear layers. */
  lora?: LoraSet;
  /**
   * 'int8': the blocks' linear layers (attention projections, cross-attention query/output, the Mix-FFN's 1x1
   * convs) with per-channel int8 weights and per-token int8 activations (src/nn/int8-linear.ts); the weights are
   * quantized once into a cache file (src/nn/weight-cache.ts) that later loads map. Default 'none'.
   */
  quantization?: TransformerQuantization;
  /** int8 activations: 'per-token' (default) or 'per-tensor' (fused DynamicQuantizeMatMul); see src/nn/int8-linear.ts. */
  int8Activations?: Int8Activations;
  /** Folder of that cache; default `<checkpoint folder>/.sana-ts-cache/` when writable, else the user's cache. */
  weightCacheDir?: string;
  /**
   * Compute precision: 'float32' (default) or 'float16', as the released fp16 checkpoints run in diffusers: every
   * layer in float16 except the reference's float32 islands (linear-attention products and division, the masked
   * softmax, the sinusoidal embedding; norm statistics in float32 inside the norm ops), with float32 inputs and
   * outputs. For GPUs; on a CPU it runs but gains nothing (ONNX Runtime widens most float16 ops there).
   */
  precision?: TransformerPrecision;
}

export type TransformerPrecision = 'float32' | 'float16';

/**
 * The sessions' options: ONNX Runtime's optimised graph and prepacked weights cached per machine by default
 * (optimized-model-cache.ts), which makes later loads of Sana-600M 4 s instead of 21 s (prepacking its GEMM weights
 * is most of a load) at the cost of about twice the checkpoint's float32 size on disk. Prepacking stays on by default
 * even for a one-shot run: on a 2-core Xeon (AMX) a cached Sana-600M loads in 2.2-2.5 s prepacked and 0.62 s with
 * `prepack: false`, but each 512 px CFG step then takes 2.60-2.64 s instead of 2.40-2.44 s (bench/transformer.ts, back to
 * back), so prepacking paid from about 9 steps on. Since the emitter declares value shapes (onnx-emit.ts) both loads are
 * shorter (2-core EPYC: 1.65 s prepacked, 0.37-0.40 s unpacked) and packing pays from about 5 steps; `prepack: false`
 * is the faster choice for 1-4 step (Sprint) runs.
 */
function sessionOptions(options: SanaTransformerOptions): SanaTransformerOptions {
  return { ...options, cacheOptimizedModel: options.cacheOptimizedModel ?? 'auto' };
}

function emitOptions(options: SanaTransformerOptions) {
  const precision = options.precision ?? 'float32';
  if (precision !== 'float32' && precision !== 'float16') {
    throw new Error(`SanaTransformer.load: option precision must be 'float32' or 'float16' (got ${JSON.stringify(precision)})`);
  }
  return { halfPrecision: precision === 'float16' };
}

export type TransformerQuantization = 'none' | 'int8';

/** The per-step linear layers the int8 mode quantizes (the caption graph's keys/values run once per image). */
const INT8_LAYERS = /^transformer_blocks\.\d+\.(attn1\.to_(q|k|v|out\.0)|attn2\.to_(q|out\.0)|ff\.conv_(inverted|point))$/;

/** Builds a denoise graph, its int8 layers (if any) bound to the quantized-weight cache file. */
function denoiseBuilder(dir: string, config: SanaTransformerConfig, store: WeightStore, options: SanaTransformerOptions) {
  const quantization = options.quantization ?? 'none';
  if (quantization !== 'none' && quantization !== 'int8') {
    throw new Error(`SanaTransformer.load: option quantization must be 'none' or 'int8' (got ${JSON.stringify(quantization)})`);
  }
  if (quantization === 'int8' && options.lora?.fuse) {
    throw new Error('SanaTransformer.load: quantization int8 and fused LoRA exclude each other (LoRA without fusing works: it is added on the activations)');
  }
  return (graphOptions: SanaGraphOptions) => {
    if (quantization === 'none') return { built: buildDenoiseGraph(config, store, graphOptions) };
    const cached = withWeightCache(
      {
        dirs: options.weightCacheDir ? [options.weightCacheDir] : defaultWeightCacheDirs(dir),
        label: 'sana-int8',
        sourceFiles: store.filePaths(),
        settings: { weights: 'per-channel-symmetric-int8', ...int8WeightSettings() },
      },
      (sink) => buildDenoiseGraph(config, store, { ...graphOptions, quantizedLinear: int8LinearProvider(sink, (p) => INT8_LAYERS.test(p), options.int8Activations) }),
    );
    return { built: cached.value, weightCache: { file: cached.file, created: cached.created } };
  };
}

/** The cached caption side of one batch: feed it to every denoise step of that batch. */
export interface CaptionHandle {
  readonly batch: number;
  readonly tokens: number;
  /**
   * Mask bias and per-block keys/values, keyed by denoise-graph input name; on a GPU they stay on the device
   * (DeviceTensors) for every step of the batch. Give them back with releaseCaption when the batch is done.
   */
  readonly tensors: Readonly<Record<string, SessionValue>>;
  /** caption_projection / caption_norm when loaded with debugOutputs. */
  readonly debug: Readonly<Record<string, HostTensor>>;
}

/** PAG rows and ControlNet residuals for one denoise call. */
export interface DenoiseVariantInputs {
  /** Blocks whose self-attention is the identity map for the rows marked true. */
  perturbed?: { layers: readonly number[]; rows: readonly boolean[] };
  /** residual k [B, N, D] is added after block k + 1. */
  blockResiduals?: readonly HostTensor[];
}

export class SanaTransformer {
  private readonly positionTables = new Map<string, HostTensor>();
  /** Denoise graphs with PAG layers or ControlNet inputs, compiled when first asked for. */
  private readonly variants = new Map<string, Promise<ModelSession>>();

  private constructor(
    readonly config: SanaTransformerConfig,
    /** Weight file the model was loaded from (a .safetensors or a shard index). */
    readonly weightsPath: string,
    private readonly captionSession: ModelSession,
    private readonly denoiseSession: ModelSession,
    private readonly store: WeightStore,
    private readonly options: SanaTransformerOptions,
    private readonly buildDenoise: (graphOptions: SanaGraphOptions) => { built: BuiltGraph },
    /** int8 loads: the quantized-weight cache file, and whether this load wrote it. */
    readonly weightCache?: { readonly file: string; readonly created: boolean },
  ) {}

  static async load(dir: string, options: SanaTransformerOptions = {}): Promise<SanaTransformer> {
    const config = readSanaTransformerConfig(dir);
    const weightsPath = findWeights(dir, ['diffusion_pytorch_model'], options.variant);
    const store = WeightStore.open(weightsPath);
    const graphOptions = { debugOutputs: options.debugOutputs, lora: options.lora };
    const caption = buildCaptionGraph(config, store, graphOptions);
    const buildDenoise = denoiseBuilder(dir, config, store, options);
    const { built: denoise, weightCache } = buildDenoise(graphOptions);
    WeightBinder.finishAll(`SanaTransformer2DModel (${dir})`, [caption.binder, denoise.binder]);
    options.lora?.checkAllUsed(`SanaTransformer2DModel (${dir})`);
    const backend = options.backend ?? defaultBackend;
    const emit = emitOptions(options);
    const captionSession = await backend.createSession(compileGraph(caption.graph, emit), { ...sessionOptions(options), deviceOutputs: captionDeviceOutputs(config) });
    const denoiseSession = await backend.createSession(compileGraph(denoise.graph, emit), sessionOptions(options));
    return new SanaTransformer(config, weightsPath, captionSession, denoiseSession, store, options, buildDenoise, weightCache);
  }

  /**
   * Runs the caption graph: encoder_hidden_states [B, T, Cc] float32, encoder_attention_mask [B, T] int64.
   * Trailing positions that are padding in every row are dropped first (unless trimPadding is false): their mask
   * bias of -10000 gives them a softmax weight of exactly 0 in float32, so the result is unchanged while
   * cross-attention works on the real tokens only (a short prompt has a few dozen of its 300).
   */
  async encodeCaption(
    encoderHiddenStates: HostTensor,
    encoderAttentionMask: HostTensor,
    options: { trimPadding?: boolean } = {},
  ): Promise<CaptionHandle> {
    return runCaptionGraph(this.captionSession, this.config, encoderHiddenStates, encoderAttentionMask, options);
  }

  /** One denoise step: the velocity `sample` [B, C, H, W] for latents [B, C, H, W] at timestep [B]. */
  async denoise(
    latents: HostTensor,
    timestep: HostTensor,
    caption: CaptionHandle,
    guidance?: HostTensor,
    variant: DenoiseVariantInputs = {},
  ): Promise<HostTensor> {
    return (await this.denoiseAll(latents, timestep, caption, guidance, variant)).sample;
  }

  /** As denoise, returning every graph output (with debugOutputs: the reference's module outputs). */
  async denoiseAll(
    latents: HostTensor,
    timestep: HostTensor,
    caption: CaptionHandle,
    guidance?: HostTensor,
    variant: DenoiseVariantInputs = {},
  ): Promise<Record<string, HostTensor>> {
    const c = this.config;
    const s = latents.shape;
    const p = c.patchSize;
    if (latents.dtype !== 'float32' || s.length !== 4 || s[1] !== c.inChannels || s[2] % p !== 0 || s[3] % p !== 0) {
      throw new Error(
        `hidden_states must be float32 [B, ${c.inChannels}, H, W] with H and W divisible by patch_size ${p}, got ${latents.dtype} [${s.join(', ')}]`,
      );
    }
    if (s[0] !== caption.batch) throw new Error(`hidden_states batch ${s[0]} differs from the caption batch ${caption.batch}`);
    const feeds: Record<string, SessionValue> = { ...caption.tensors, hidden_states: latents, timestep: batchVector('timestep', timestep, s[0]) };
    if (c.guidanceEmbeds) {
      if (!guidance) throw new Error('this model has guidance_embeds: true and needs a guidance input [B]');
      feeds.guidance = batchVector('guidance', guidance, s[0]);
    } else if (guidance) {
      throw new Error('guidance was given but this model has guidance_embeds: false');
    }
    if (c.interpolationScale !== undefined) feeds[POSITION_TABLE] = this.positionTable(s[2] / p, s[3] / p);
    const session = await this.variantSession(variant, feeds, s[0]);
    const out = await session.run(feeds);
    return { ...caption.debug, ...out };
  }

  /** The one-shot forward of diffusers (caption graph + denoise graph). */
  async forward(inputs: {
    hidden_states: HostTensor;
    encoder_hidden_states: HostTensor;
    encoder_attention_mask: HostTensor;
    timestep: HostTensor;
    guidance?: HostTensor;
  }): Promise<HostTensor> {
    const caption = await this.encodeCaption(inputs.encoder_hidden_states, inputs.encoder_attention_mask);
    try {
      return await this.denoise(inputs.hidden_states, inputs.timestep, caption, inputs.guidance);
    } finally {
      releaseCaption(caption);
    }
  }

  /** Hidden width and other derived sizes. */
  get dims(): ReturnType<typeof sanaDims> {
    return sanaDims(this.config);
  }

  async release(): Promise<void> {
    await this.captionSession.release();
    await this.denoiseSession.release();
    for (const v of this.variants.values()) await (await v).release();
    this.variants.clear();
  }

  /** The plain denoise session, or the one with PAG layers / ControlNet inputs (feeds filled in). */
  private async variantSession(v: DenoiseVariantInputs, feeds: Record<string, SessionValue>, batch: number): Promise<ModelSession> {
    const layers = v.perturbed?.layers ?? [];
    const residuals = v.blockResiduals?.length ?? 0;
    if (!layers.length && !residuals) return this.denoiseSession;
    for (const k of layers) {
      if (!Number.isSafeInteger(k) || k < 0 || k >= this.config.numLayers) throw new Error(`PAG layer ${k} is not a block of this ${this.config.numLayers}-block transformer`);
    }
    if (layers.length) {
      const rows = v.perturbed!.rows;
      if (rows.length !== batch) throw new Error(`PAG marks ${rows.length} rows for a batch of ${batch}`);
      feeds[PAG_ROWS] = HostTensor.float32([batch], Float32Array.from(rows, (r) => (r ? 1 : 0)));
    }
    v.blockResiduals?.forEach((r, k) => {
      feeds[blockResidualName(k)] = r;
    });
    const key = `${layers.join(',')}|${residuals}`;
    let session = this.variants.get(key);
    if (!session) {
      const denoise = this.buildDenoise({ debugOutputs: this.options.debugOutputs, lora: this.options.lora, pagLayers: layers, blockResiduals: residuals }).built;
      // the same weight names as the plain graph, whose load already checked the checkpoint strictly
      session = (this.options.backend ?? defaultBackend).createSession(compileGraph(denoise.graph, emitOptions(this.options)), sessionOptions(this.options));
      this.variants.set(key, session);
    }
    return session;
  }

  private positionTable(h: number, w: number): HostTensor {
    const key = `${h}x${w}`;
    let t = this.positionTables.get(key);
    if (!t) {
      t = sincosPositionTable(this.config, h, w);
      this.positionTables.set(key, t);
    }
    return t;
  }
}

/**
 * Runs a caption graph (the transformer's or a ControlNet's: buildCaptionGraph) on checked inputs, padding columns
 * trimmed as SanaTransformer.encodeCaption explains, and collects its outputs as a CaptionHandle.
 */
export async function runCaptionGraph(
  session: ModelSession,
  config: SanaTransformerConfig,
  encoderHiddenStates: HostTensor,
  encoderAttentionMask: HostTensor,
  options: { trimPadding?: boolean } = {},
): Promise<CaptionHandle> {
  const cc = config.captionChannels;
  const s = encoderHiddenStates.shape;
  if (encoderHiddenStates.dtype !== 'float32' || s.length !== 3 || s[2] !== cc) {
    throw new Error(`encoder_hidden_states must be float32 [B, T, ${cc}], got ${encoderHiddenStates.dtype} [${s.join(', ')}]`);
  }
  const m = encoderAttentionMask.shape;
  if (encoderAttentionMask.dtype !== 'int64' || m.length !== 2 || m[0] !== s[0] || m[1] !== s[1]) {
    throw new Error(`encoder_attention_mask must be int64 [${s[0]}, ${s[1]}] (1 = token, 0 = padding), got ${encoderAttentionMask.dtype} [${m.join(', ')}]`);
  }
  const keep = options.trimPadding === false ? s[1] : keptCaptionLength(encoderAttentionMask);
  const caption = keep === s[1] ? encoderHiddenStates : sliceTokens(encoderHiddenStates, keep);
  const mask = keep === s[1] ? encoderAttentionMask : sliceTokens(encoderAttentionMask, keep);
  const out = await session.runMixed({ encoder_hidden_states: caption, encoder_attention_mask: mask });
  const tensors: Record<string, SessionValue> = { [CROSS_BIAS]: out[CROSS_BIAS] };
  for (let i = 0; i < config.numLayers; i++) {
    tensors[crossKeyName(i)] = out[crossKeyName(i)];
    tensors[crossValueName(i)] = out[crossValueName(i)];
  }
  const debug: Record<string, HostTensor> = {};
  for (const name of ['caption_projection', 'caption_norm']) {
    const v = out[name];
    if (v && !isDeviceTensor(v)) debug[name] = v;
  }
  return { batch: s[0], tokens: keep, tensors, debug };
}

/** Frees a caption's device tensors (a no-op for host tensors); the handle must not be used afterwards. */
export function releaseCaption(caption: CaptionHandle): void {
  for (const v of Object.values(caption.tensors)) if (isDeviceTensor(v)) v.dispose();
}

/** The caption graph's outputs that the denoise graph reads every step: kept on a GPU between steps. */
export function captionDeviceOutputs(config: SanaTransformerConfig): string[] {
  const names = [CROSS_BIAS];
  for (let i = 0; i < config.numLayers; i++) names.push(crossKeyName(i), crossValueName(i));
  return names;
}

/**
 * Caption length without the trailing columns that are padding (mask 0) in every row. When some row has no token
 * at all, the reference attends uniformly over all positions, so nothing is trimmed.
 */
export function keptCaptionLength(mask: HostTensor): number {
  const [batch, tokens] = mask.shape;
  const m = mask.data as BigInt64Array;
  let keep = 0;
  for (let b = 0; b < batch; b++) {
    let last = -1;
    for (let t = tokens - 1; t >= 0; t--) {
      if (m[b * tokens + t] !== 0n) {
        last = t;
        break;
      }
    }
    if (last < 0) return tokens;
    keep = Math.max(keep, last + 1);
  }
  return keep;
}

/** The first `keep` positions of axis 1 of a [B, T, ...] tensor. */
function sliceTokens(t: HostTensor, keep: number): HostTensor {
  const [batch, tokens] = t.shape;
  const inner = t.shape.slice(2).reduce((p, d) => p * d, 1);
  const Ctor = t.data.constructor as new (n: number) => typeof t.data;
  const out = new Ctor(batch * keep * inner);
  for (let b = 0; b < batch; b++) {
    (out as Float32Array).set((t.data as Float32Array).subarray(b * tokens * inner, (b * tokens + keep) * inner), b * keep * inner);
  }
  return new HostTensor(t.dtype, [batch, keep, ...t.shape.slice(2)], out);
}

/** A [B] float32 vector (int64 timesteps are converted exactly; a single value is repeated over the batch). */
function batchVector(name: string, t: HostTensor, batch: number): HostTensor {
  if (t.dtype !== 'float32' && t.dtype !== 'int64') throw new Error(`${name} must be float32 [${batch}], got ${t.dtype}`);
  const values = t.toFloat32();
  if (t.shape.length > 1 || (values.length !== batch && values.length !== 1)) {
    throw new Error(`${name} must have shape [${batch}] (or [1]), got [${t.shape.join(', ')}]`);
  }
  if (t.dtype === 'float32' && values.length === batch) return t;
  return HostTensor.float32([batch], values.length === batch ? Float32Array.from(values) : new Float32Array(batch).fill(values[0]));
}

/** Loads a diffusers transformer folder (config.json + diffusion_pytorch_model[.fp16|.bf16].safetensors[.index.json]). */
export function loadSanaTransformer(dir: string, options: SanaTransformerOptions = {}): Promise<SanaTransformer> {
  return SanaTransformer.load(dir, options);
}
