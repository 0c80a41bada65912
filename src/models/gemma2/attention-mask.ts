// Additive attention biases of the Gemma-2 decoder: causal plus key padding, and the sliding-window variant;
// also for queries that follow P cached positions (the instruction prefix, see prefix-cache.ts). ref: SANA.md §4.5
//
// transformers (4.47, eager) builds one float mask per batch whose entries are 0 (attend) or the dtype's minimum
// (never -inf, so a row with every key masked still softmaxes to a uniform average instead of NaN; such rows occur
// for padding queries on sliding layers). We reproduce that exactly: one Where per mask kind, values 0 or -FLT_MAX.

import { Graph, Tensor } from '../../graph/graph.js';
import { HostTensor } from '../../io/host-tensor.js';
import { equal, greater, less, not, sub, where } from '../../graph/ops/elementwise.js';
import { SymDim, cast, concat, dimOf, expand, range, squeeze, unsqueeze } from '../../graph/ops/shape-ops.js';

/** torch.finfo(torch.float32).min */
export const FLOAT32_MIN = -3.4028234663852886e38;

export interface AttentionBiases {
  /**
   * [B, 1, 1, T, T] float32: key j visible to query i iff j <= i and attention_mask[b, j] != 0; after P cached
   * positions [B, 1, 1, T, P+T] with query i at absolute position P + i and the cached keys always valid.
   */
  readonly full: Tensor;
  /** The same with i - j < window as well; undefined when no layer slides. */
  readonly sliding?: Tensor;
}

/** Positions 0..T-1 as int64 [T]; with `offset` P, the absolute positions P..P+T-1. */
export function positions(g: Graph, t: SymDim, offset?: SymDim): Tensor {
  if (!offset) return range(g.scalar(0, 'int64'), squeeze(t.value, [0]), g.scalar(1, 'int64'), t.label);
  const end = g.node1('Add', [offset.value, t.value], 'int64', [1]); // [1]: P + T
  return range(squeeze(offset.value, [0]), squeeze(end, [0]), g.scalar(1, 'int64'), t.label);
}

/** P + T as a run-time dimension. */
export function addDims(a: SymDim, b: SymDim): SymDim {
  const label = typeof a.label === 'number' && typeof b.label === 'number' ? a.label + b.label : `${a.label}+${b.label}`;
  return { value: a.value.graph.node1('Add', [a.value, b.value], 'int64', [1]), label };
}

/**
 * Biases for `attentionMask` int64 [B, T], shaped [B, 1, 1, T, T] to broadcast over the grouped-query score
 * layout [B, kvHeads, groups, T, T].
 */
export function attentionBiases(attentionMask: Tensor, t: SymDim, slidingWindow: number | null): AttentionBiases {
  const g = attentionMask.graph;
  const pos = positions(g, t);
  const query = unsqueeze(pos, [1]); // [T, 1]
  const key = unsqueeze(pos, [0]); // [1, T]
  const causal = not(greater(key, query)); // [T, T]
  const keyValid = unsqueeze(not(equal(attentionMask, 0)), [1, 2, 3]); // [B, 1, 1, 1, T]
  const min = g.scalar(FLOAT32_MIN);
  const padding = where(keyValid, g.scalar(0), min); // [B, 1, 1, 1, T]
  const full = where(causal, padding, min); // [B, 1, 1, T, T]
  if (slidingWindow === null) return { full };
  const inWindow = less(sub(query, key), slidingWindow); // [T, T]: i - j < window
  return { full, sliding: where(inWindow, full, min) };
}

/**
 * Biases for T new queries after P cached positions: `attentionMask` int64 [B, T] covers the new tokens only (the
 * cached prefix is all real tokens, the encoder checks that), `past` is P. Query i sits at absolute position P + i
 * and sees key j (absolute, 0..P+T-1) iff j <= P + i, the key is valid and, on sliding layers, P + i - j < window:
 * the same rule as attentionBiases over the whole sequence, restricted to its last T rows.
 */
export function cachedAttentionBiases(attentionMask: Tensor, t: SymDim, past: SymDim, slidingWindow: number | null): AttentionBiases {
  const g = attentionMask.graph;
  const total = addDims(past, t);
  const query = unsqueeze(positions(g, t, past), [1]); // [T, 1]: P + i
  const key = unsqueeze(positions(g, total), [0]); // [1, P+T]
  const causal = not(greater(key, query)); // [T, P+T]
  const cachedValid = expand(g.constant(HostTensor.int64([1, 1], [1]), 'ones_i64'), [dimOf(attentionMask, 0), past]); // [B, P]
  const keyMask = concat([cachedValid, attentionMask], 1); // [B, P+T]
  const keyValid = unsqueeze(not(equal(keyMask, 0)), [1, 2, 3]); // [B, 1, 1, 1, P+T]
  const min = g.scalar(FLOAT32_MIN);
  const padding = where(keyValid, g.scalar(0), min); // [B, 1, 1, 1, P+T]
  const full = where(causal, padding, min); // [B, 1, 1, T, P+T]
  if (slidingWindow === null) return { full };
  const inWindow = less(sub(query, key), slidingWindow); // [T, P+T]: (P + i) - j < window
  return { full, sliding: where(inWindow, full, min) };
}

/** Whole-number positions as float32 [T] (RoPE angles are computed in float32, as transformers forces). */
export function floatPositions(g: Graph, t: SymDim, offset?: SymDim): Tensor {
  return cast(positions(g, t, offset), 'float32');
}
