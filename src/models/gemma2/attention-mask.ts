// Additive attention biases of the Gemma-2 decoder: causal plus key padding, and the sliding-window variant.
// ref: SANA.md §4.5
//
// transformers (4.47, eager) builds one float mask per batch whose entries are 0 (attend) or the dtype's minimum
// (never -inf, so a row with every key masked still softmaxes to a uniform average instead of NaN; such rows occur
// for padding queries on sliding layers). We reproduce that exactly: one Where per mask kind, values 0 or -FLT_MAX.

import { Graph, Tensor } from '../../graph/graph.js';
import { equal, greater, less, not, sub, where } from '../../graph/ops/elementwise.js';
import { SymDim, cast, range, squeeze, unsqueeze } from '../../graph/ops/shape-ops.js';

/** torch.finfo(torch.float32).min */
export const FLOAT32_MIN = -3.4028234663852886e38;

export interface AttentionBiases {
  /** [B, 1, 1, T, T] float32: key j visible to query i iff j <= i and attention_mask[b, j] != 0. */
  readonly full: Tensor;
  /** The same with i - j < window as well; undefined when no layer slides. */
  readonly sliding?: Tensor;
}

/** Positions 0..T-1 as int64 [T]. */
export function positions(g: Graph, t: SymDim): Tensor {
  return range(g.scalar(0, 'int64'), squeeze(t.value, [0]), g.scalar(1, 'int64'), t.label);
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

/** Whole-number positions as float32 [T] (RoPE angles are computed in float32, as transformers forces). */
export function floatPositions(g: Graph, t: SymDim): Tensor {
  return cast(positions(g, t), 'float32');
}
