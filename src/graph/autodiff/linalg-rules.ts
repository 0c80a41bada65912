// Gradient rules of the matrix products. With Y = alpha op(A) op(B): dA = alpha dY op(B)^T and dB = alpha op(A)^T dY,
// written with the transpose flags of Gemm / FusedMatMul so no transposed copy is materialised; batch axes that an
// operand broadcast over are summed back. A 2-D weight against a batched activation gets one flattened Gemm
// instead of a batch of products and a reduction.

import { Tensor } from '../graph.js';
import { mul } from '../ops/elementwise.js';
import { fusedMatmul, gemm } from '../ops/linalg.js';
import { reshape } from '../ops/shape-ops.js';
import { GradContext, GradRule, fail, floatAttr, gradOut, input, intAttr, unbroadcast } from './context.js';

interface ProductFlags {
  transA: boolean;
  transB: boolean;
  alpha: number;
}

/** [..., r, c] -> [prod(...) * r, c] when the last dimension is static (a 2-D view for one Gemm). */
function flattenLeading(ctx: GradContext, t: Tensor): Tensor {
  const last = t.shape[t.rank - 1];
  if (typeof last !== 'number') fail(ctx, `${t.name} needs a static last dimension`);
  return reshape(t, [-1, last]); // [prod(lead), last]
}

/**
 * Gradients of alpha op(a) @ op(b) (batched, broadcasting). When one operand is a 2-D matrix and the other is
 * batched without transposition of the batched side's rows, the matrix's gradient is one Gemm over the flattened
 * batch (sum over the batch for free).
 */
function productGrads(ctx: GradContext, a: Tensor, b: Tensor, gy: Tensor, f: ProductFlags): [Tensor | undefined, Tensor | undefined] {
  const { transA, transB, alpha } = f;
  const opts = (ta: boolean, tb: boolean) => ({ transA: ta, transB: tb, alpha });
  let ga: Tensor | undefined;
  let gb: Tensor | undefined;
  if (ctx.needs[0]) {
    if (a.rank === 2 && b.rank === 2) {
      ga = transA ? gemm(b, gy, null, opts(transB, true)) : gemm(gy, b, null, opts(false, !transB));
    } else {
      ga = transA ? fusedMatmul(b, gy, opts(transB, true)) : fusedMatmul(gy, b, opts(false, !transB));
      ga = unbroadcast(ga, a);
    }
  }
  if (ctx.needs[1]) {
    if (b.rank === 2 && a.rank > 2 && !transA) {
      // dB = alpha op(A)^T dY summed over the batch: A flattened to [batch * M, K], dY to [batch * M, N]
      const a2 = flattenLeading(ctx, a);
      const gy2 = flattenLeading(ctx, gy);
      gb = transB ? gemm(gy2, a2, null, opts(true, false)) : gemm(a2, gy2, null, opts(true, false));
    } else if (a.rank === 2 && b.rank === 2) {
      gb = transB ? gemm(gy, a, null, opts(true, transA)) : gemm(a, gy, null, opts(!transA, false));
    } else {
      gb = transB ? fusedMatmul(gy, a, opts(true, transA)) : fusedMatmul(a, gy, opts(!transA, false));
      gb = unbroadcast(gb, b);
    }
  }
  return [ga, gb];
}

export const LINALG_RULES: Readonly<Record<string, GradRule>> = {
  MatMul: (ctx) => {
    const [a, b] = [input(ctx, 0), input(ctx, 1)];
    if (a.rank < 2 || b.rank < 2) fail(ctx, 'rank-1 operands are not supported');
    return productGrads(ctx, a, b, gradOut(ctx), { transA: false, transB: false, alpha: 1 });
  },
  FusedMatMul: (ctx) => {
    const [a, b] = [input(ctx, 0), input(ctx, 1)];
    if (intAttr(ctx, 'transBatchA', 0) || intAttr(ctx, 'transBatchB', 0)) fail(ctx, 'transBatchA/B are not supported');
    const flags = { transA: intAttr(ctx, 'transA', 0) === 1, transB: intAttr(ctx, 'transB', 0) === 1, alpha: floatAttr(ctx, 'alpha', 1) };
    return productGrads(ctx, a, b, gradOut(ctx), flags);
  },
  Gemm: (ctx) => {
    const [a, b] = [input(ctx, 0), input(ctx, 1)];
    const c = ctx.inputs[2];
    const gy = gradOut(ctx);
    const flags = { transA: intAttr(ctx, 'transA', 0) === 1, transB: intAttr(ctx, 'transB', 0) === 1, alpha: floatAttr(ctx, 'alpha', 1) };
    const [ga, gb] = productGrads(ctx, a, b, gy, flags);
    const beta = floatAttr(ctx, 'beta', 1);
    const gc = c && ctx.needs[2] ? unbroadcast(beta === 1 ? gy : mul(gy, beta), c) : undefined;
    return [ga, gb, gc];
  },
};
