// The two graphs of SanaTransformer2DModel. The caption graph holds everything that depends only on the caption
// (caption projection + norm, every block's cross-attention keys and values, the mask bias); the denoise graph
// takes the latent, the timestep and those cached tensors. A sampler runs the caption graph once per image and the
// denoise graph once per step. Both have symbolic B, H, W, T so one compiled pair serves every batch and resolution.
// ref: SANA.md §1.2

import { Graph, Tensor } from '../../graph/graph.js';
import { add, mul, sub } from '../../graph/ops/elementwise.js';
import { cast, dimOf, mulDims, reshape, transpose, unsqueeze } from '../../graph/ops/shape-ops.js';
import { LoraSet } from '../../nn/lora.js';
import { checkLayerCount } from '../../nn/layer-count.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { QuantizedLinearProvider } from '../../nn/int8-linear.js';
import { WeightStore } from '../../io/weights.js';
import { CrossKeyValue, crossKeyValue } from './attention.js';
import { finalNorm, sanaBlock } from './block.js';
import { SanaTransformerConfig, sanaDims } from './config.js';
import { captionEmbedding, patchEmbed, timeEmbedding } from './embeddings.js';
import { linearToChannels, linearTokens } from './layers.js';

/** Names of the tensors passed from the caption graph to the denoise graph. */
export const CROSS_BIAS = 'cross_attention_bias';
export const crossKeyName = (i: number): string => `transformer_blocks.${i}.attn2.key`;
export const crossValueName = (i: number): string => `transformer_blocks.${i}.attn2.value`;
/** Optional denoise-graph input: the 2-D sin-cos table [N, D] for the run's grid (models with interpolation_scale). */
export const POSITION_TABLE = 'pos_embed';

/** Names of the optional denoise-graph inputs for PAG and ControlNet. */
export const PAG_ROWS = 'pag_perturbed_rows';
export const blockResidualName = (k: number): string => `controlnet_block_samples.${k}`;

export interface SanaGraphOptions {
  /** LoRA adapters on the linear layers (in the graph, or fused into the weights). */
  lora?: LoraSet;
  /** Blocks whose self-attention PAG perturbs (adds the [B] input pag_perturbed_rows). */
  pagLayers?: readonly number[];
  /** ControlNet residual inputs controlnet_block_samples.0 .. n-1, [B, N, D] each. */
  blockResiduals?: number;
  /** Quantized linear layers of the denoise graph (the transformer's int8 mode, see SanaTransformer.load). */
  quantizedLinear?: QuantizedLinearProvider;
  /** Also output the reference's module outputs (patch_embed, time_embed.out0/out1, caption_projection,
   *  caption_norm, transformer_blocks.i, norm_out, proj_out) for parity tests. */
  debugOutputs?: boolean;
}

export interface BuiltGraph {
  readonly graph: Graph;
  readonly binder: WeightBinder;
}

/** What the caption side computes for the denoise side: the mask bias and every block's keys and values. */
export interface CaptionSide {
  /** [B, 1, 1, T] additive bias (1 - m) * -10000. */
  readonly maskBias: Tensor;
  readonly crossKv: CrossKeyValue[];
  /** caption_projection output [B, T, D] and caption_norm output (debug outputs). */
  readonly projected: Tensor;
  readonly normed: Tensor;
}

/** caption [B, T, Cc] and mask [B, T] int64 -> the mask bias and per-block cross-attention keys and values. */
export function captionSide(w: WeightBinder, config: SanaTransformerConfig, caption: Tensor, mask: Tensor): CaptionSide {
  const g = w.graph;
  checkLayerCount(w.store, 'transformer_blocks', config.numLayers, config.file ?? 'the transformer config', 'num_layers');
  // (1 - m) * -10000, broadcast over heads and queries
  const bias = mul(sub(1, cast(mask, 'float32')), -10000);
  const maskBias = unsqueeze(bias, [1, 2]); // [B, 1, 1, T]
  const { projected, normed } = captionEmbedding(w, config, caption);
  const crossKv = Array.from({ length: config.numLayers }, (_, i) =>
    g.scope(`transformer_blocks.${i}`, () => crossKeyValue(w, config, `transformer_blocks.${i}.attn2`, normed)),
  );
  return { maskBias, crossKv, projected, normed };
}

/** encoder_hidden_states [B, T, Cc] + encoder_attention_mask [B, T] int64 -> mask bias and per-block K, V. */
export function buildCaptionGraph(config: SanaTransformerConfig, store: WeightStore, options: SanaGraphOptions = {}): BuiltGraph {
  const g = new Graph('sana_transformer_caption');
  const w = new WeightBinder(g, store, { lora: options.lora });
  const caption = g.input('encoder_hidden_states', 'float32', ['B', 'T', config.captionChannels]);
  const mask = g.input('encoder_attention_mask', 'int64', ['B', 'T']);
  const side = captionSide(w, config, caption, mask);
  g.output(side.maskBias, CROSS_BIAS);
  side.crossKv.forEach((kv, i) => {
    g.output(kv.key, crossKeyName(i));
    g.output(kv.value, crossValueName(i));
  });
  if (options.debugOutputs) {
    g.output(side.projected, 'caption_projection');
    g.output(side.normed, 'caption_norm');
  }
  return { graph: g, binder: w };
}

export interface DenoiseInputs {
  /** [B, C, H, W] */
  readonly latent: Tensor;
  /** [B] float32, in the transformer's [0, 1000] convention. */
  readonly timestep: Tensor;
  /** [B] for guidance-embedding models. */
  readonly guidance?: Tensor;
  /** [N, D] sin-cos table for models with interpolation_scale. */
  readonly positions?: Tensor;
  readonly maskBias: Tensor;
  readonly crossKv: readonly CrossKeyValue[];
  /** PAG: the blocks whose self-attention is perturbed, and [B] 1 for the perturbed rows. */
  readonly perturbed?: { readonly layers: ReadonlySet<number>; readonly rows: Tensor };
  /** ControlNet: residual k [B, N, D] added after block k + 1. */
  readonly blockResiduals?: readonly Tensor[];
}

/** The transformer from the latent to the velocity `sample` [B, C, H, W]; `debug` receives module outputs. */
export function denoiseSide(
  w: WeightBinder,
  config: SanaTransformerConfig,
  inputs: DenoiseInputs,
  debug: (t: Tensor, name: string) => void = () => {},
): Tensor {
  // before any block is built: a config with more blocks than the weights would build them all first
  checkLayerCount(w.store, 'transformer_blocks', config.numLayers, config.file ?? 'the transformer config', 'num_layers');
  const { inner, outTokenChannels } = sanaDims(config);
  const { latent } = inputs;
  const patches = patchEmbed(w, config, latent);
  let x = inputs.positions ? add(patches.tokens, inputs.positions) : patches.tokens; // [B, N, D]
  debug(x, 'patch_embed');
  const time = timeEmbedding(w, config, inputs.timestep, inputs.guidance);
  debug(time.modulation, 'time_embed.out0');
  debug(time.embedded, 'time_embed.out1');

  const perturbedRows = inputs.perturbed ? unsqueeze(inputs.perturbed.rows, [1, 2]) : undefined; // [B, 1, 1]
  for (let i = 0; i < config.numLayers; i++) {
    const ctx = {
      modulation: time.modulation,
      crossKv: inputs.crossKv[i],
      maskBias: inputs.maskBias,
      h: patches.h,
      w: patches.w,
      perturbedRows: inputs.perturbed?.layers.has(i) ? perturbedRows : undefined,
    };
    x = sanaBlock(w, config, i, x, ctx);
    // diffusers adds controlnet_block_samples[i - 1] after block i, for 1 <= i <= the number of samples
    const residual = i >= 1 ? inputs.blockResiduals?.[i - 1] : undefined;
    if (residual) x = add(x, residual);
    debug(x, `transformer_blocks.${i}`);
  }
  const normed = finalNorm(w, config, x, time.embedded);
  debug(normed, 'norm_out');

  const b = dimOf(latent, 0);
  const p = config.patchSize;
  const c = config.outChannels;
  if (p === 1) {
    // Channels-first projection is already NCHW: [B, C, N] -> [B, C, h, w].
    const projected = linearToChannels(w, 'proj_out', normed, inner, outTokenChannels); // [B, C, N]
    debug(projected, 'proj_out.channels_first');
    return reshape(projected, [b, c, patches.h, patches.w]); // [B, C, h, w]
  }
  const projected = linearTokens(w, 'proj_out', normed, inner, outTokenChannels); // [B, N, p*p*C]
  debug(projected, 'proj_out');
  // token (y, x) feature (i*p + j)*C + c -> pixel (y*p + i, x*p + j) of channel c
  const blocks = reshape(projected, [b, patches.h, patches.w, p, p, c]); // [B, h, w, p, p, C]
  const moved = transpose(blocks, [0, 5, 1, 3, 2, 4]); // [B, C, h, p, w, p]
  return reshape(moved, [b, c, mulDims(patches.h, p), mulDims(patches.w, p)]); // [B, C, H, W]
}

/** hidden_states [B, C, H, W], timestep [B] (+ guidance, pos_embed) and the caption graph's outputs -> sample. */
export function buildDenoiseGraph(config: SanaTransformerConfig, store: WeightStore, options: SanaGraphOptions = {}): BuiltGraph {
  const { inner } = sanaDims(config);
  const g = new Graph('sana_transformer_denoise');
  const w = new WeightBinder(g, store, { lora: options.lora, quantizedLinear: options.quantizedLinear });
  const latent = g.input('hidden_states', 'float32', ['B', config.inChannels, 'H', 'W']);
  const timestep = g.input('timestep', 'float32', ['B']);
  const guidance = config.guidanceEmbeds ? g.input('guidance', 'float32', ['B']) : undefined;
  const positions = config.interpolationScale !== undefined ? g.input(POSITION_TABLE, 'float32', ['N', inner]) : undefined;
  const maskBias = g.input(CROSS_BIAS, 'float32', ['B', 1, 1, 'T']);
  const heads = config.numCrossAttentionHeads;
  const headDim = config.crossAttentionHeadDim;
  const crossKv = Array.from({ length: config.numLayers }, (_, i) => ({
    key: g.input(crossKeyName(i), 'float32', ['B', heads, headDim, 'T']),
    value: g.input(crossValueName(i), 'float32', ['B', heads, headDim, 'T']),
  }));
  const debug = (t: Tensor, name: string) => {
    if (!options.debugOutputs) return;
    // the reference's proj_out output is token-major
    if (name === 'proj_out.channels_first') g.output(transpose(t, [0, 2, 1]), 'proj_out');
    else g.output(t, name);
  };
  const perturbed = options.pagLayers?.length
    ? { layers: new Set(options.pagLayers), rows: g.input(PAG_ROWS, 'float32', ['B']) }
    : undefined;
  const blockResiduals = Array.from({ length: options.blockResiduals ?? 0 }, (_, k) => g.input(blockResidualName(k), 'float32', ['B', 'N', inner]));
  const sample = denoiseSide(w, config, { latent, timestep, guidance, positions, maskBias, crossKv, perturbed, blockResiduals }, debug);
  g.output(sample, 'sample');
  return { graph: g, binder: w };
}
