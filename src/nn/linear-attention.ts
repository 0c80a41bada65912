// ReLU linear attention (LiteLA / diffusers SanaLinearAttnProcessor2_0), shared by the SANA transformer's
// self-attention and DC-AE's multi-scale attention.
// ref: SANA.md §1.5
//
// out_i = sum_j v_j (k_j . q_i) / (sum_j k_j . q_i + eps) with q, k passed through ReLU. The cost is linear in the
// token count N: per head, S = [v; 1] k^T is a (d+1) x d matrix and O = S q a (d+1) x N one; the extra ones row of
// v yields the denominator in the same product (the reference's padding trick), so no N x N matrix is ever built.

import { Tensor } from '../graph/graph.js';
import { add, div, relu } from '../graph/ops/elementwise.js';
import { fusedMatmul, matmul } from '../graph/ops/linalg.js';
import { pad, slice } from '../graph/ops/shape-ops.js';
import { describe } from '../graph/ops/check.js';

export interface LinearAttentionOptions {
  /** Added to the denominator; diffusers uses 1e-15 (the original SANA DiT 1e-8, DC-AE 1e-15). */
  eps?: number;
  /** Feature map applied to q and k: 'relu' (SANA, DC-AE) or 'identity' (caller applied its own). */
  kernel?: 'relu' | 'identity';
}

/**
 * q, k, v: [B, heads, d, N] float32 (channels-first per head: channel = head * d + i, token = column), as a
 * projection of a [B, C, N] or NCHW map yields without any transpose. Returns [B, heads, d, N].
 */
export function reluLinearAttention(q: Tensor, k: Tensor, v: Tensor, options: LinearAttentionOptions = {}): Tensor {
  const op = 'reluLinearAttention';
  for (const t of [q, k, v]) {
    if (t.rank !== 4) throw new Error(`${op}: ${describe(t)} must be [B, heads, d, N]`);
    if (t.dtype !== 'float32') throw new Error(`${op}: ${describe(t)} must be float32 (the reference computes this in fp32)`);
  }
  const d = q.shape[2];
  if (typeof d !== 'number') throw new Error(`${op}: ${describe(q)} needs a static head dimension`);
  if (k.shape[2] !== d) throw new Error(`${op}: key ${describe(k)} and query ${describe(q)} head dims differ`);
  const eps = options.eps ?? 1e-15;
  const kernel = options.kernel ?? 'relu';
  // fp32 in the reference whatever the model dtype (SANA.md §1.9): kept float32 in a half-precision emission
  return q.graph.keepFloat32(() => {
    const qf = kernel === 'relu' ? relu(q) : q;
    const kf = kernel === 'relu' ? relu(k) : k;
    const dv = v.shape[2];
    if (typeof dv !== 'number') throw new Error(`${op}: ${describe(v)} needs a static head dimension`);
    const vOnes = pad(v, [0, 0, 0, 0, 0, 0, 1, 0], 1); // [B, H, dv+1, N]: a row of ones under v
    const s = fusedMatmul(vOnes, kf, { transB: true }); // [B, H, dv+1, d]
    const o = matmul(s, qf); // [B, H, dv+1, N]
    const num = slice(o, [2], [0], [dv]); // [B, H, dv, N]
    const den = slice(o, [2], [dv], [dv + 1]); // [B, H, 1, N]
    return div(num, add(den, eps));
  });
}
