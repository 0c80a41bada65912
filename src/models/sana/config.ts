// Typed SanaTransformer2DModel config from a diffusers `transformer/config.json`: keys equal diffusers' constructor
// arguments, missing keys take diffusers' defaults, invalid values are rejected naming the key, unknown keys are
// kept in `raw`.
// ref: SANA.md §1.1, §1.8

import * as path from 'node:path';
import { ConfigReader } from '../../io/config.js';

export type SanaQkNorm = 'rms_norm_across_heads';

export interface SanaTransformerConfig {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly numAttentionHeads: number;
  readonly attentionHeadDim: number;
  readonly numLayers: number;
  readonly numCrossAttentionHeads: number;
  readonly crossAttentionHeadDim: number;
  readonly crossAttentionDim: number;
  readonly captionChannels: number;
  readonly mlpRatio: number;
  readonly dropout: number;
  readonly attentionBias: boolean;
  readonly sampleSize: number;
  readonly patchSize: number;
  readonly normElementwiseAffine: boolean;
  readonly normEps: number;
  /** Sin-cos position embedding scale; undefined = no position embedding (512/1024 px models). */
  readonly interpolationScale: number | undefined;
  readonly guidanceEmbeds: boolean;
  /** Read by the Sprint pipeline only (g = guidance_scale * guidance_embeds_scale). */
  readonly guidanceEmbedsScale: number;
  readonly qkNorm: SanaQkNorm | undefined;
  /** Applied by the pipeline to the timestep it passes (t_model = t * timestep_scale), not by the model. */
  readonly timestepScale: number;
  /** Every key of the file, unknown ones included. */
  readonly raw: Readonly<Record<string, unknown>>;
  /** Where the config came from (errors name it). */
  readonly file?: string;
}

/** Derived sizes used by the graph code. */
export interface SanaDims {
  /** Hidden width D = heads x head dim. */
  readonly inner: number;
  /** Cross-attention width: cross heads x cross head dim (equals D in every released model). */
  readonly crossInner: number;
  /** Mix-FFN hidden width int(mlp_ratio * D). */
  readonly ffnHidden: number;
  /** Channels of one output token: p * p * out_channels. */
  readonly outTokenChannels: number;
}

export function sanaDims(c: SanaTransformerConfig): SanaDims {
  const inner = c.numAttentionHeads * c.attentionHeadDim;
  return {
    inner,
    crossInner: c.numCrossAttentionHeads * c.crossAttentionHeadDim,
    // Python's int() truncates toward zero; the product is positive.
    ffnHidden: Math.floor(c.mlpRatio * inner),
    outTokenChannels: c.patchSize * c.patchSize * c.outChannels,
  };
}

/** Parses a config object; `file` names the source in errors. */
export function parseSanaTransformerConfig(raw: Record<string, unknown>, file: string): SanaTransformerConfig {
  const r = new ConfigReader(file, raw);
  const positiveNumber = (key: string, fallback: number): number => {
    const v = r.number(key, fallback);
    if (!(v > 0) || !Number.isFinite(v)) throw new Error(`${file}: config key "${key}" must be a positive number (got ${JSON.stringify(raw[key])})`);
    return v;
  };
  const inChannels = r.positiveInt('in_channels', 32);
  // diffusers: out_channels = out_channels or in_channels
  const outChannels = r.has('out_channels') ? r.positiveInt('out_channels') : inChannels;
  const numAttentionHeads = r.positiveInt('num_attention_heads', 70);
  const attentionHeadDim = r.positiveInt('attention_head_dim', 32);
  const inner = numAttentionHeads * attentionHeadDim;
  const numCrossAttentionHeads = r.positiveInt('num_cross_attention_heads', 20);
  const crossAttentionHeadDim = r.positiveInt('cross_attention_head_dim', 112);
  const crossAttentionDim = r.positiveInt('cross_attention_dim', 2240);
  const dropout = r.number('dropout', 0);
  if (dropout < 0 || dropout >= 1) throw new Error(`${file}: config key "dropout" must be in [0, 1) (got ${dropout})`);
  const qkNormRaw = r.optionalString('qk_norm');
  if (qkNormRaw !== undefined && qkNormRaw !== 'rms_norm_across_heads') {
    throw new Error(`${file}: config key "qk_norm" must be null or "rms_norm_across_heads" (got ${JSON.stringify(qkNormRaw)})`);
  }
  const interpolationScale = r.has('interpolation_scale') ? positiveNumber('interpolation_scale', 1) : undefined;
  const config: SanaTransformerConfig = {
    inChannels,
    outChannels,
    numAttentionHeads,
    attentionHeadDim,
    numLayers: r.positiveInt('num_layers', 20),
    numCrossAttentionHeads,
    crossAttentionHeadDim,
    crossAttentionDim,
    captionChannels: r.positiveInt('caption_channels', 2304),
    mlpRatio: positiveNumber('mlp_ratio', 2.5),
    dropout,
    attentionBias: r.bool('attention_bias', false),
    sampleSize: r.positiveInt('sample_size', 32),
    patchSize: r.positiveInt('patch_size', 1),
    normElementwiseAffine: r.bool('norm_elementwise_affine', false),
    normEps: positiveNumber('norm_eps', 1e-6),
    interpolationScale,
    guidanceEmbeds: r.bool('guidance_embeds', false),
    guidanceEmbedsScale: r.number('guidance_embeds_scale', 0.1),
    qkNorm: qkNormRaw as SanaQkNorm | undefined,
    timestepScale: positiveNumber('timestep_scale', 1),
    raw,
    file,
  };
  // Relations diffusers relies on (its module shapes would not fit otherwise).
  if (crossAttentionDim !== inner) {
    throw new Error(
      `${file}: config key "cross_attention_dim" must equal num_attention_heads x attention_head_dim = ${inner} (got ${crossAttentionDim}); the caption is projected to the hidden width`,
    );
  }
  if (interpolationScale !== undefined && inner % 4 !== 0) {
    throw new Error(`${file}: config key "interpolation_scale" needs a hidden width divisible by 4 for the 2-D sin-cos table (width ${inner})`);
  }
  return config;
}

export function readSanaTransformerConfig(dir: string): SanaTransformerConfig {
  const file = path.join(dir, 'config.json');
  const reader = ConfigReader.open(file);
  return parseSanaTransformerConfig(reader.raw, file);
}
