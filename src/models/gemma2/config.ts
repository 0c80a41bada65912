// Gemma-2 decoder configuration, read from a transformers `config.json` (Gemma2Config).
// ref: SANA.md §4.5
//
// Defaults are transformers' Gemma2Config defaults (= Gemma-2-2B). Which layers use the sliding window: newer
// transformers write `layer_types` ("sliding_attention" / "full_attention" per layer); older configs (4.42-4.47,
// what SANA's checkpoints were saved with) have none, and those versions slide on the EVEN layers
// (`sliding_window if not bool(layer_idx % 2)` in Gemma2Attention). Both readings give the same list for Gemma-2.

import { ConfigReader } from '../../io/config.js';

export type LayerType = 'sliding_attention' | 'full_attention';

export interface Gemma2Config {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly numKeyValueHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  /** Attention scores are multiplied by queryPreAttnScalar^-0.5 (not head_dim^-0.5). */
  readonly queryPreAttnScalar: number;
  /** tanh soft-capping of attention logits; null = none. */
  readonly attnLogitSoftcapping: number | null;
  /** Sliding-window size for the layers of type "sliding_attention"; null = no window anywhere. */
  readonly slidingWindow: number | null;
  readonly layerTypes: readonly LayerType[];
  readonly attentionBias: boolean;
  readonly padTokenId: number;
  readonly bosTokenId: number;
  /** The config.json this came from (for error messages). */
  readonly file: string;
}

/** Gemma-2-2B's settings (transformers' defaults), e.g. for benchmarks with synthetic weights. */
export const GEMMA2_2B: Omit<Gemma2Config, 'file' | 'layerTypes'> = {
  vocabSize: 256000,
  hiddenSize: 2304,
  intermediateSize: 9216,
  numHiddenLayers: 26,
  numAttentionHeads: 8,
  numKeyValueHeads: 4,
  headDim: 256,
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
  queryPreAttnScalar: 256,
  attnLogitSoftcapping: 50,
  slidingWindow: 4096,
  attentionBias: false,
  padTokenId: 0,
  bosTokenId: 2,
};

/** transformers <= 4.47: even layers slide. */
export function defaultLayerTypes(numLayers: number): LayerType[] {
  return Array.from({ length: numLayers }, (_, i) => (i % 2 === 0 ? 'sliding_attention' : 'full_attention'));
}

export function readGemma2Config(file: string): Gemma2Config {
  return parseGemma2Config(ConfigReader.open(file));
}

export function parseGemma2Config(c: ConfigReader): Gemma2Config {
  const d = GEMMA2_2B;
  const modelType = c.optionalString('model_type');
  if (modelType !== undefined && modelType !== 'gemma2') c.oneOf('model_type', ['gemma2']);
  const activation = c.has('hidden_activation') ? 'hidden_activation' : 'hidden_act';
  c.oneOf(activation, ['gelu_pytorch_tanh'], 'gelu_pytorch_tanh');
  if (c.has('rope_scaling')) {
    throw new Error(`${c.file}: config key "rope_scaling" must be null (got ${JSON.stringify(c.raw.rope_scaling)}); Gemma-2 uses plain RoPE`);
  }
  const hiddenSize = c.positiveInt('hidden_size', d.hiddenSize);
  const numAttentionHeads = c.positiveInt('num_attention_heads', d.numAttentionHeads);
  const numKeyValueHeads = c.positiveInt('num_key_value_heads', d.numKeyValueHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw new Error(
      `${c.file}: config key "num_key_value_heads" (${numKeyValueHeads}) must divide "num_attention_heads" (${numAttentionHeads})`,
    );
  }
  const headDim = c.positiveInt('head_dim', d.headDim);
  if (headDim % 2 !== 0) throw new Error(`${c.file}: config key "head_dim" must be even for rotary embeddings (got ${headDim})`);
  const numHiddenLayers = c.positiveInt('num_hidden_layers', d.numHiddenLayers);
  const softcap = c.raw.attn_logit_softcapping === null ? null : c.number('attn_logit_softcapping', d.attnLogitSoftcapping!);
  if (softcap !== null && !(softcap > 0)) {
    throw new Error(`${c.file}: config key "attn_logit_softcapping" must be a positive number or null (got ${softcap})`);
  }
  const slidingWindow = c.raw.sliding_window === null ? null : c.positiveInt('sliding_window', d.slidingWindow!);
  let layerTypes: LayerType[];
  if (c.has('layer_types')) {
    const raw = c.stringArray('layer_types');
    if (raw.length !== numHiddenLayers || !raw.every((t) => t === 'sliding_attention' || t === 'full_attention')) {
      throw new Error(
        `${c.file}: config key "layer_types" must list ${numHiddenLayers} entries of "sliding_attention" or "full_attention" (got ${JSON.stringify(raw)})`,
      );
    }
    layerTypes = raw as LayerType[];
  } else {
    layerTypes = defaultLayerTypes(numHiddenLayers);
  }
  const rmsNormEps = c.number('rms_norm_eps', d.rmsNormEps);
  if (!(rmsNormEps > 0)) throw new Error(`${c.file}: config key "rms_norm_eps" must be positive (got ${rmsNormEps})`);
  return {
    vocabSize: c.positiveInt('vocab_size', d.vocabSize),
    hiddenSize,
    intermediateSize: c.positiveInt('intermediate_size', d.intermediateSize),
    numHiddenLayers,
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    rmsNormEps,
    ropeTheta: c.number('rope_theta', d.ropeTheta),
    queryPreAttnScalar: c.number('query_pre_attn_scalar', d.queryPreAttnScalar),
    attnLogitSoftcapping: softcap,
    slidingWindow,
    layerTypes,
    attentionBias: c.bool('attention_bias', d.attentionBias),
    padTokenId: c.int('pad_token_id', d.padTokenId, 0),
    bosTokenId: c.int('bos_token_id', d.bosTokenId, 0),
    file: c.file,
  };
}
