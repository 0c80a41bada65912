// Gemma-2 self-attention: grouped-query heads, RoPE, query_pre_attn_scalar scaling, tanh logit soft-capping,
// additive causal/padding (and sliding-window) bias, softmax in float32. ref: SANA.md §4.5
//
// Grouped-query attention without repeating K/V: query head h uses KV head floor(h / groups), and the query heads
// of one KV head are adjacent, so queries reshaped to [B, kvHeads, groups*T, D] meet keys [B, kvHeads, D, T] in one
// batched MatMul per KV head (M = groups*T).
//
// With cached keys/values (the instruction prefix, see prefix-cache.ts) the T new tokens' keys and values are
// appended to the P cached ones (after RoPE, as transformers' cache holds them), so the new queries score against
// P + T keys; the softcap and the additive bias are applied exactly as without the cache.

import { Tensor } from '../../graph/graph.js';
import { add, div, mul, tanh } from '../../graph/ops/elementwise.js';
import { matmul } from '../../graph/ops/linalg.js';
import { softmax } from '../../graph/ops/norm.js';
import { SymDim, concat, expand, mulDims, reshape, transpose } from '../../graph/ops/shape-ops.js';
import { LinearLayer } from '../../nn/model-weights.js';
import { Gemma2Config } from './config.js';
import { RotaryTables, applyRotary } from './rotary.js';

export interface AttentionProjections {
  readonly q: LinearLayer;
  readonly k: LinearLayer;
  readonly v: LinearLayer;
  readonly o: LinearLayer;
}

export interface AttentionContext {
  readonly batch: SymDim;
  readonly seq: SymDim;
  readonly rotary: RotaryTables;
  /** Additive bias [B, 1, 1, T, T] for this layer (full or sliding). */
  readonly bias: Tensor;
  /** Soft-capping value, or null to skip it (transformers' SDPA path ignores it). */
  readonly softcap: number | null;
  /** Cached keys and values [1, Hkv, P, D] (keys after RoPE) of the P positions before these T; bias is then [B, 1, 1, T, P+T]. */
  readonly past?: { readonly key: Tensor; readonly value: Tensor; readonly length: SymDim; readonly total: SymDim };
  /** Receives this layer's keys and values [B, Hkv, P+T, D] (cached ones first), to be cached. */
  readonly present?: (key: Tensor, value: Tensor) => void;
}

/** x [B*T, hidden] -> [B*T, hidden]. */
export function selfAttention(x: Tensor, cfg: Gemma2Config, proj: AttentionProjections, ctx: AttentionContext): Tensor {
  const { batch: B, seq: T } = ctx;
  const D = cfg.headDim;
  const heads = cfg.numAttentionHeads;
  const kvHeads = cfg.numKeyValueHeads;
  const groups = heads / kvHeads;
  const scale = Math.pow(cfg.queryPreAttnScalar, -0.5);

  const q = applyRotary(reshape(proj.q(x), [B, T, heads, D]), ctx.rotary); // [B, T, H, D]
  const k = applyRotary(reshape(proj.k(x), [B, T, kvHeads, D]), ctx.rotary); // [B, T, Hkv, D]
  const v = reshape(proj.v(x), [B, T, kvHeads, D]); // [B, T, Hkv, D]

  const qHeads = reshape(transpose(mul(q, scale), [0, 2, 1, 3]), [B, kvHeads, mulDims(T, groups), D]); // [B, Hkv, G*T, D]
  let kT: Tensor;
  let vHeads = transpose(v, [0, 2, 1, 3]); // [B, Hkv, T, D]
  let S = T; // keys per query row
  if (ctx.past || ctx.present) {
    let kHeads = transpose(k, [0, 2, 1, 3]); // [B, Hkv, T, D]
    if (ctx.past) {
      const P = ctx.past.length;
      kHeads = concat([expand(ctx.past.key, [B, kvHeads, P, D]), kHeads], 2); // [B, Hkv, P+T, D]
      vHeads = concat([expand(ctx.past.value, [B, kvHeads, P, D]), vHeads], 2); // [B, Hkv, P+T, D]
      S = ctx.past.total;
    }
    ctx.present?.(kHeads, vHeads);
    kT = transpose(kHeads, [0, 1, 3, 2]); // [B, Hkv, D, P+T]
  } else {
    kT = transpose(k, [0, 2, 3, 1]); // [B, Hkv, D, T]
  }

  let scores = reshape(matmul(qHeads, kT), [B, kvHeads, groups, T, S]); // [B, Hkv, G, T, P+T]
  if (ctx.softcap !== null) scores = mul(tanh(div(scores, ctx.softcap)), ctx.softcap);
  const probs = softmax(add(scores, ctx.bias), -1);
  const out = matmul(reshape(probs, [B, kvHeads, mulDims(T, groups), S]), vHeads); // [B, Hkv, G*T, D]
  const merged = transpose(reshape(out, [B, heads, T, D]), [0, 2, 1, 3]); // [B, T, H, D]
  return proj.o(reshape(merged, [mulDims(B, T), heads * D])); // [B*T, H*D] -> [B*T, hidden]
}
