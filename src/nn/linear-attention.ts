// ReLU linear attention kernel shared by the SANA transformer (attn1) and DC-AE (EfficientViT blocks).
// ref: SANA.md §1.5 (step 5) and §3.2
//
// out_i = (sum_j v_j (k_j . q_i)) / (sum_j k_j . q_i + eps), with no 1/sqrt(d) scale and no softmax. The d x d
// matrix k^T v is formed first, so the cost is linear in the number of tokens N. This is the reference's
// "pad v with a row of ones" formulation (S = [v; 1] k^T, O = S q) with the ones row computed as a key sum, which
// skips materialising the padded v. Callers apply ReLU to q and k and do the fp32 upcast themselves.

import { Tensor } from '../graph/graph.js';
import { add, div } from '../graph/ops/elementwise.js';
import { matmul } from '../graph/ops/linalg.js';
import { reduceSum } from '../graph/ops/norm.js';
import { transpose } from '../graph/ops/shape-ops.js';
import { describe } from '../graph/ops/check.js';

/**
 * Linear attention over N tokens for q, k, v shaped [B, heads, N, d] (ReLU already applied to q and k); returns
 * [B, heads, N, d].
 */
export function linearAttention(q: Tensor, k: Tensor, v: Tensor, eps: number): Tensor {
  for (const t of [q, k, v]) {
    if (t.rank !== 4) throw new Error(`linearAttention: ${describe(t)} must be [B, heads, N, d]`);
  }
  const kT = transpose(k, [0, 1, 3, 2]); // [B, h, d, N]
  const kv = matmul(kT, v); // [B, h, d, d]: sum_j k_j v_j^T
  const num = matmul(q, kv); // [B, h, N, d]
  const kSum = reduceSum(kT, [3], true); // [B, h, d, 1]
  const den = matmul(q, kSum); // [B, h, N, 1]
  return div(num, add(den, eps));
}

/**
 * The same kernel for channel-major operands q, k, v shaped [B, heads, d, N] (the layout convolutional models
 * produce by reshaping NCHW maps); returns [B, heads, d, N]. Avoids transposing the large N-sized operands.
 */
export function linearAttentionChannelMajor(q: Tensor, k: Tensor, v: Tensor, eps: number): Tensor {
  for (const t of [q, k, v]) {
    if (t.rank !== 4) throw new Error(`linearAttentionChannelMajor: ${describe(t)} must be [B, heads, d, N]`);
  }
  const vk = matmul(v, transpose(k, [0, 1, 3, 2])); // [B, h, d, d]: vk[a, b] = sum_j v[a, j] k[b, j]
  const num = matmul(vk, q); // [B, h, d, N]
  const kSum = transpose(reduceSum(k, [3], true), [0, 1, 3, 2]); // [B, h, 1, d]
  const den = matmul(kSum, q); // [B, h, 1, N]
  return div(num, add(den, eps));
}
