// Gemma-2 self-attention: grouped-query heads, RoPE, query_pre_attn_scalar scaling, tanh logit soft-capping,
// additive causal/padding (and sliding-window) bias, softmax in float32. ref: SANA.md §4.5
//
// Grouped-query attention without repeating K/V: query head h uses KV head floor(h / groups), and the query heads
// of one KV head are adjacent, so queries reshaped to [B, kvHeads, groups*T, D] meet keys [B, kvHeads, D, T] in one
// batched MatMul per KV head (M = groups*T).
//
// With cached keys/values (the instruction prefix, see prefix-cache.ts; keys after RoPE, as transformers' cache
// holds them) the T new queries score against the P cached keys and their own T, and the softcap, the additive bias
// and one softmax over all P + T apply exactly as without the cache.

import { Tensor } from '../../graph/graph.js';
import { add, div, mul, tanh } from '../../graph/ops/elementwise.js';
import { matmul } from '../../graph/ops/linalg.js';
import { softmax } from '../../graph/ops/norm.js';
import { SymDim, concat, expand, mulDims, reshape, splitDims, transpose } from '../../graph/ops/shape-ops.js';
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
  readonly past?: { readonly key: Tensor; readonly value: Tensor; readonly length: SymDim; readonly total: SymDim; readonly inPlace: boolean };
  /** Receives this layer's keys and values of the T new tokens [B, Hkv, T, D], to be cached. */
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
  const vHeads = transpose(v, [0, 2, 1, 3]); // [B, Hkv, T, D]
  // the new tokens' keys and values, to be cached (a prefix run has no past: they are all of it)
  ctx.present?.(transpose(k, [0, 2, 1, 3]), vHeads); // [B, Hkv, T, D] each
  const kT = transpose(k, [0, 2, 3, 1]); // [B, Hkv, D, T]
  const attend = (scores: Tensor, S: SymDim | number): Tensor => {
    let s = reshape(scores, [B, kvHeads, groups, T, S]); // [B, Hkv, G, T, S]
    if (ctx.softcap !== null) s = mul(tanh(div(s, ctx.softcap)), ctx.softcap);
    return reshape(softmax(add(s, ctx.bias), -1), [B, kvHeads, mulDims(T, groups), S]); // [B, Hkv, G*T, S]
  };
  let out: Tensor;
  if (ctx.past && !ctx.past.inPlace) {
    // appended to copies of the cached keys/values (no zero-length pieces when P = 0: what WebGPU needs)
    const { length: P, total } = ctx.past;
    const keys = concat([expand(ctx.past.key, [B, kvHeads, P, D]), transpose(k, [0, 2, 1, 3])], 2); // [B, Hkv, P+T, D]
    const values = concat([expand(ctx.past.value, [B, kvHeads, P, D]), vHeads], 2); // [B, Hkv, P+T, D]
    out = matmul(attend(matmul(qHeads, transpose(keys, [0, 1, 3, 2])), total), values); // [B, Hkv, G*T, D]
  } else if (ctx.past) {
    // The cached positions are read where they lie: scores and the weighted sum come in two parts (cached keys,
    // new keys), as appending the new keys to the cached ones copied all P+T of them in every layer of every run
    // (Expand + Concat, ~13% of a cached int8 run at P = 207, T = 9). Only the small score rows are concatenated.
    const { length: P, total } = ctx.past;
    const pastKT = transpose(ctx.past.key, [0, 1, 3, 2]); // [1, Hkv, D, P] (a MatMul with transposed B in ORT)
    const scores = concat([matmul(qHeads, pastKT), matmul(qHeads, kT)], 3); // [B, Hkv, G*T, P+T]
    const [probsPast, probsNew] = splitDims(attend(scores, total), 3, [P, T]); // [B, Hkv, G*T, P], [B, Hkv, G*T, T]
    out = add(matmul(probsPast, ctx.past.value), matmul(probsNew, vHeads)); // [B, Hkv, G*T, D]
  } else {
    out = matmul(attend(matmul(qHeads, kT), T), vHeads); // [B, Hkv, G*T, D]
  }
  const merged = transpose(reshape(out, [B, heads, T, D]), [0, 2, 1, 3]); // [B, T, H, D]
  return proj.o(reshape(merged, [mulDims(B, T), heads * D])); // [B*T, H*D] -> [B*T, hidden]
}
