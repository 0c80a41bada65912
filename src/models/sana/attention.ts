// SANA's two attentions. Activations are token-major [B, N, D]; projections are Gemms on tokens and each head split
// is one Transpose to [B, heads, d, N], the layout both attention cores use (measured on this CPU: Gemm with its
// prepacked weight plus the Transpose beats a product with the weight on the left by ~10-40%); merged heads take
// one Transpose back to tokens for the output Gemm.
// ref: SANA.md §1.5 (linear self-attention), §1.6 (cross-attention)

import { Tensor } from '../../graph/graph.js';
import { add } from '../../graph/ops/elementwise.js';
import { fusedMatmul } from '../../graph/ops/linalg.js';
import { rmsNorm, softmax } from '../../graph/ops/norm.js';
import { dimOf, reshape, transpose } from '../../graph/ops/shape-ops.js';
import { reluLinearAttention } from '../../nn/linear-attention.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { SanaTransformerConfig, sanaDims } from './config.js';
import { linearTokens } from './layers.js';

/** eps of diffusers' RMSNorm for qk_norm = "rms_norm_across_heads" (Attention's default eps). */
const QK_NORM_EPS = 1e-5;
/** eps of the linear-attention denominator in diffusers' SanaLinearAttnProcessor2_0. */
const LINEAR_ATTENTION_EPS = 1e-15;

/** Node-name scope of a module inside its block's scope: "transformer_blocks.3.attn1" -> "attn1". */
export function localName(prefix: string): string {
  return prefix.slice(prefix.lastIndexOf('.') + 1);
}

/**
 * x [B, N, D] -> [B, heads, d, N]: a token-major Gemm (prepacked weight, fused bias; faster than a product with
 * the weight on the left), the optional RMSNorm across heads on the last axis, then one Transpose to heads.
 */
function project(
  w: WeightBinder,
  prefix: string,
  which: 'q' | 'k' | 'v',
  x: Tensor,
  inF: number,
  heads: number,
  headDim: number,
  bias: boolean,
  qkNorm: boolean,
): Tensor {
  const outF = heads * headDim;
  let y = linearTokens(w, `${prefix}.to_${which}`, x, inF, outF, bias); // [B, N, C]
  if (qkNorm && which !== 'v') y = rmsNorm(y, QK_NORM_EPS, w.get(`${prefix}.norm_${which}.weight`, [outF]));
  const split = reshape(y, [dimOf(x, 0), dimOf(x, 1), heads, headDim]); // [B, N, heads, d]
  return transpose(split, [0, 2, 3, 1]); // [B, heads, d, N]
}

/** attn1: ReLU linear attention on the modulated, normalised tokens; returns [B, N, D]. */
export function linearSelfAttention(w: WeightBinder, config: SanaTransformerConfig, prefix: string, x: Tensor): Tensor {
  const { inner } = sanaDims(config);
  const heads = config.numAttentionHeads;
  const d = config.attentionHeadDim;
  const qkNorm = config.qkNorm !== undefined;
  return w.graph.scope(localName(prefix), () => {
    const q = project(w, prefix, 'q', x, inner, heads, d, config.attentionBias, qkNorm);
    const k = project(w, prefix, 'k', x, inner, heads, d, config.attentionBias, qkNorm);
    const v = project(w, prefix, 'v', x, inner, heads, d, config.attentionBias, qkNorm);
    const attended = reluLinearAttention(q, k, v, { eps: LINEAR_ATTENTION_EPS }); // [B, heads, d, N]
    const merged = transpose(reshape(attended, [dimOf(x, 0), inner, dimOf(x, 1)]), [0, 2, 1]); // [B, D, N] -> [B, N, D]
    return linearTokens(w, `${prefix}.to_out.0`, merged, inner, inner);
  });
}

/**
 * PAG's identity attention map on x [B, N, D]: to_out(to_v(x)) with no query, key, ReLU kernel or normalisation
 * (diffusers' PAG processors, which also skip norm_q / norm_k). ref: SANA.md §7.4
 */
export function identitySelfAttention(w: WeightBinder, config: SanaTransformerConfig, prefix: string, x: Tensor): Tensor {
  const { inner } = sanaDims(config);
  return w.graph.scope(`${localName(prefix)}_identity`, () => {
    const v = linearTokens(w, `${prefix}.to_v`, x, inner, inner, config.attentionBias); // [B, N, D]
    return linearTokens(w, `${prefix}.to_out.0`, v, inner, inner);
  });
}

export interface CrossKeyValue {
  /** [B, heads, d, T] */
  readonly key: Tensor;
  /** [B, heads, d, T] */
  readonly value: Tensor;
}

/** attn2's keys and values of the caption (they do not depend on the latent or timestep: computed once per image). */
export function crossKeyValue(w: WeightBinder, config: SanaTransformerConfig, prefix: string, caption: Tensor): CrossKeyValue {
  const { inner } = sanaDims(config);
  const heads = config.numCrossAttentionHeads;
  const d = config.crossAttentionHeadDim;
  const qkNorm = config.qkNorm !== undefined;
  return w.graph.scope(localName(prefix), () => ({
    key: project(w, prefix, 'k', caption, inner, heads, d, true, qkNorm),
    value: project(w, prefix, 'v', caption, inner, heads, d, true, qkNorm),
  }));
}

/**
 * attn2: softmax attention of the tokens x [B, N, D] over the caption keys/values [B, heads, d, T] with the
 * additive mask bias [B, 1, 1, T]; returns [B, N, D].
 */
export function crossAttention(
  w: WeightBinder,
  config: SanaTransformerConfig,
  prefix: string,
  x: Tensor,
  kv: CrossKeyValue,
  maskBias: Tensor,
): Tensor {
  const { inner, crossInner } = sanaDims(config);
  const heads = config.numCrossAttentionHeads;
  const d = config.crossAttentionHeadDim;
  return w.graph.scope(localName(prefix), () => {
    const q = project(w, prefix, 'q', x, inner, heads, d, true, config.qkNorm !== undefined); // [B, heads, d, N]
    const scores = fusedMatmul(q, kv.key, { transA: true, alpha: 1 / Math.sqrt(d) }); // [B, heads, N, T]
    // the masked softmax stays float32 in a half-precision emission (SANA.md §1.9)
    const probs = w.graph.keepFloat32(() => softmax(add(scores, maskBias), -1));
    const attended = fusedMatmul(kv.value, probs, { transB: true }); // [B, heads, d, N]
    const merged = transpose(reshape(attended, [dimOf(x, 0), crossInner, dimOf(x, 1)]), [0, 2, 1]); // [B, Dc, N] -> [B, N, Dc]
    return linearTokens(w, `${prefix}.to_out.0`, merged, crossInner, inner);
  });
}

