// Rotary position embedding of Gemma-2 (rotate-half convention, positions 0..T-1 regardless of padding, which is
// on the right; P..P+T-1 after P cached positions). ref: SANA.md §4.5
//
// rope(x) = x * cos + rotate_half(x) * sin with rotate_half([x1, x2]) = [-x2, x1]. We fold the sign into the sine
// table (sinSigned = [-sin, sin]) so the rotation is one Concat of the swapped halves, no Neg over x; the products
// are the same floats as transformers' (negation is exact).

import { Graph, Tensor } from '../../graph/graph.js';
import { add, cos, mul, neg, sin } from '../../graph/ops/elementwise.js';
import { SymDim, concat, split, unsqueeze } from '../../graph/ops/shape-ops.js';
import { floatPositions } from './attention-mask.js';

export interface RotaryTables {
  /** [T, 1, D]: cos of [freqs, freqs]. */
  readonly cos: Tensor;
  /** [T, 1, D]: [-sin(freqs), sin(freqs)]. */
  readonly sinSigned: Tensor;
  readonly headDim: number;
}

/** inv_freq_j = 1 / theta^(2j / D) in float32, rounded step by step as transformers computes it. */
export function inverseFrequencies(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const out = new Float32Array(half);
  for (let j = 0; j < half; j++) out[j] = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * j) / headDim))));
  return out;
}

/** Tables for positions 0..T-1, or P..P+T-1 with `offset` P (new tokens after a cached prefix). */
export function rotaryTables(g: Graph, t: SymDim, headDim: number, theta: number, offset?: SymDim): RotaryTables {
  const invFreq = g.floats([headDim / 2], inverseFrequencies(headDim, theta));
  const freqs = mul(unsqueeze(floatPositions(g, t, offset), [1]), invFreq); // [T, D/2]
  const c = cos(freqs);
  const s = sin(freqs);
  return {
    cos: unsqueeze(concat([c, c], -1), [1]), // [T, 1, D]
    sinSigned: unsqueeze(concat([neg(s), s], -1), [1]), // [T, 1, D]
    headDim,
  };
}

/** Applies RoPE to x [B, T, heads, D]. */
export function applyRotary(x: Tensor, tables: RotaryTables): Tensor {
  const half = tables.headDim / 2;
  const [x1, x2] = split(x, -1, [half, half]);
  const swapped = concat([x2, x1], -1); // [B, T, heads, D]
  return add(mul(x, tables.cos), mul(swapped, tables.sinSigned));
}
