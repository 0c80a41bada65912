// The two graphs of SanaTransformer2DModel. The caption graph holds everything that depends only on the caption
// (caption projection + norm, every block's cross-attention keys and values, the mask bias); the denoise graph
// takes the latent, the timestep and those cached tensors. A sampler runs the caption graph once per image and the
// denoise graph once per step. Both have symbolic B, H, W, T so one compiled pair serves every batch and resolution.
// ref: SANA.md §1.2

import { Graph, Tensor } from '../../graph/graph.js';
import { add, mul, sub } from '../../graph/ops/elementwise.js';
import { cast, dimOf, mulDims, reshape, transpose, unsqueeze } from '../../graph/ops/shape-ops.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { WeightStore } from '../../io/weights.js';
import { crossKeyValue } from './attention.js';
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

export interface SanaGraphOptions {
  /** Also output the reference's module outputs (patch_embed, time_embed.out0/out1, caption_projection,
   *  caption_norm, transformer_blocks.i, norm_out, proj_out) for parity tests. */
  debugOutputs?: boolean;
}

export interface BuiltGraph {
  readonly graph: Graph;
  readonly binder: WeightBinder;
}

/** encoder_hidden_states [B, T, Cc] + encoder_attention_mask [B, T] int64 -> mask bias and per-block K, V. */
export function buildCaptionGraph(config: SanaTransformerConfig, store: WeightStore, options: SanaGraphOptions = {}): BuiltGraph {
  const g = new Graph('sana_transformer_caption');
  const w = new WeightBinder(g, store);
  const caption = g.input('encoder_hidden_states', 'float32', ['B', 'T', config.captionChannels]);
  const mask = g.input('encoder_attention_mask', 'int64', ['B', 'T']);
  // (1 - m) * -10000, broadcast over heads and queries
  const bias = mul(sub(1, cast(mask, 'float32')), -10000);
  g.output(unsqueeze(bias, [1, 2]), CROSS_BIAS); // [B, 1, 1, T]
  const { projected, normed } = captionEmbedding(w, config, caption);
  for (let i = 0; i < config.numLayers; i++) {
    const kv = g.scope(`transformer_blocks.${i}`, () => crossKeyValue(w, config, `transformer_blocks.${i}.attn2`, normed));
    g.output(kv.key, crossKeyName(i));
    g.output(kv.value, crossValueName(i));
  }
  if (options.debugOutputs) {
    g.output(projected, 'caption_projection');
    g.output(normed, 'caption_norm');
  }
  return { graph: g, binder: w };
}

/** hidden_states [B, C, H, W], timestep [B] (+ guidance, pos_embed) and the caption graph's outputs -> sample. */
export function buildDenoiseGraph(config: SanaTransformerConfig, store: WeightStore, options: SanaGraphOptions = {}): BuiltGraph {
  const { inner, outTokenChannels } = sanaDims(config);
  const g = new Graph('sana_transformer_denoise');
  const w = new WeightBinder(g, store);
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
    if (options.debugOutputs) g.output(t, name);
  };

  const patches = patchEmbed(w, config, latent);
  let x = positions ? add(patches.tokens, positions) : patches.tokens; // [B, N, D]
  debug(x, 'patch_embed');
  const time = timeEmbedding(w, config, timestep, guidance);
  debug(time.modulation, 'time_embed.out0');
  debug(time.embedded, 'time_embed.out1');

  for (let i = 0; i < config.numLayers; i++) {
    x = sanaBlock(w, config, i, x, { modulation: time.modulation, crossKv: crossKv[i], maskBias, h: patches.h, w: patches.w });
    debug(x, `transformer_blocks.${i}`);
  }
  const normed = finalNorm(w, config, x, time.embedded);
  debug(normed, 'norm_out');

  const b = dimOf(latent, 0);
  const p = config.patchSize;
  const c = config.outChannels;
  let sample: Tensor;
  if (p === 1) {
    // Channels-first projection is already NCHW: [B, C, N] -> [B, C, h, w].
    const projected = linearToChannels(w, 'proj_out', normed, inner, outTokenChannels); // [B, C, N]
    if (options.debugOutputs) debug(transpose(projected, [0, 2, 1]), 'proj_out');
    sample = reshape(projected, [b, c, patches.h, patches.w]); // [B, C, h, w]
  } else {
    const projected = linearTokens(w, 'proj_out', normed, inner, outTokenChannels); // [B, N, p*p*C]
    debug(projected, 'proj_out');
    // token (y, x) feature (i*p + j)*C + c -> pixel (y*p + i, x*p + j) of channel c
    const blocks = reshape(projected, [b, patches.h, patches.w, p, p, c]); // [B, h, w, p, p, C]
    const moved = transpose(blocks, [0, 5, 1, 3, 2, 4]); // [B, C, h, p, w, p]
    sample = reshape(moved, [b, c, mulDims(patches.h, p), mulDims(patches.w, p)]); // [B, C, H, W]
  }
  g.output(sample, 'sample');
  return { graph: g, binder: w };
}
