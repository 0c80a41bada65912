// The Gemma-2 decoder stack as one graph: input_ids, attention_mask int64 [B, T] -> last_hidden_state float32
// [B, T, hidden] (after the final norm; what SANA uses), optionally every hidden_states.i. ref: SANA.md §4.5
//
// The cached variant (pastKeyValues) also takes every layer's keys and values of P earlier positions
// (past_key.i, past_value.i float32 [1, Hkv, P, D], shared by the batch; P may be 0) and returns the new tokens'
// own (present_key.i, present_value.i [B, Hkv, T, D]; with P = 0, a prefix's whole cache): the new tokens sit at
// positions P..P+T-1.
// Gemma-2 is causal, so the states of a fixed prefix never depend on what follows it (see prefix-cache.ts).

import { Graph, Tensor } from '../../graph/graph.js';
import { mul } from '../../graph/ops/elementwise.js';
import { dimOf, mulDims, reshape } from '../../graph/ops/shape-ops.js';
import { ModelWeights } from '../../nn/model-weights.js';
import { AttentionContext } from './attention.js';
import { addDims, attentionBiases, cachedAttentionBiases } from './attention-mask.js';
import { Gemma2Config } from './config.js';
import { decoderLayer, gemmaRmsNorm } from './decoder-layer.js';
import { rotaryTables } from './rotary.js';

export interface Gemma2GraphOptions {
  /**
   * Apply the attention-logit soft-capping of the config (default true: transformers <= 4.47, whose Gemma-2 used
   * eager attention, the behaviour SANA was trained with). false reproduces newer transformers' SDPA default,
   * which silently ignores the cap.
   */
  softcap?: boolean;
  /** Also output hidden_states.0 (scaled embeddings) ... hidden_states.N (= last_hidden_state), as transformers. */
  outputHiddenStates?: boolean;
  /** The cached variant: past_key.i / past_value.i inputs, present_key.i / present_value.i outputs (see above). */
  pastKeyValues?: boolean;
  /**
   * The cached variant reads past keys/values in place (scores and weighted sum in two parts; default true) rather
   * than appending the new tokens' to copies of them (false: what WebGPU runs, as its kernels refuse zero-length
   * tensors, and the P = 0 prefix run has them).
   */
  cachedKeysInPlace?: boolean;
}

export function buildGemma2Graph(cfg: Gemma2Config, weights: ModelWeights, options: Gemma2GraphOptions = {}): Graph {
  const g = weights.graph;
  const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
  const attentionMask = g.input('attention_mask', 'int64', ['B', 'T']);
  const B = dimOf(inputIds, 0);
  const T = dimOf(inputIds, 1);
  const BT = mulDims(B, T);
  const H = cfg.hiddenSize;

  // The multiplier sqrt(hidden) is rounded to the activation dtype (float32) first, as transformers does.
  const rows = weights.embedding('embed_tokens.weight', [cfg.vocabSize, H], inputIds); // [B, T, H]
  let h = mul(reshape(rows, [BT, H]), Math.fround(Math.sqrt(H))); // [B*T, H]

  const window = cfg.layerTypes.includes('sliding_attention') ? cfg.slidingWindow : null;
  const pastShape = [1, cfg.numKeyValueHeads, 'P', cfg.headDim];
  const past = options.pastKeyValues
    ? Array.from({ length: cfg.numHiddenLayers }, (_, i) => ({
        key: g.input(`past_key.${i}`, 'float32', pastShape),
        value: g.input(`past_value.${i}`, 'float32', pastShape),
      }))
    : undefined;
  const P = past ? dimOf(past[0].key, 2) : undefined;
  const biases = P ? cachedAttentionBiases(attentionMask, T, P, window) : attentionBiases(attentionMask, T, window);
  const rotary = rotaryTables(g, T, cfg.headDim, cfg.ropeTheta, P);
  const total = P ? addDims(P, T) : undefined;
  const softcap = options.softcap === false ? null : cfg.attnLogitSoftcapping;
  const toBTH = (x: Tensor) => reshape(x, [B, T, H]); // [B, T, H]

  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    if (options.outputHiddenStates) g.output(toBTH(h), `hidden_states.${i}`);
    const ctx: AttentionContext = {
      batch: B,
      seq: T,
      rotary,
      bias: cfg.layerTypes[i] === 'sliding_attention' && biases.sliding ? biases.sliding : biases.full,
      softcap,
      past: past && P && total ? { ...past[i], length: P, total, inPlace: options.cachedKeysInPlace ?? true } : undefined,
      present: past
        ? (key, value) => {
            g.output(key, `present_key.${i}`);
            g.output(value, `present_value.${i}`);
          }
        : undefined,
    };
    h = g.scope(`layers.${i}`, () => decoderLayer(h, i, cfg, weights, ctx));
  }
  const last = toBTH(gemmaRmsNorm(h, weights, 'norm', cfg));
  g.output(last, 'last_hidden_state');
  if (options.outputHiddenStates) g.output(last, `hidden_states.${cfg.numHiddenLayers}`);
  return g;
}
