// Gradient rules of reductions, softmax and the fused norms. The norms recompute their statistics from the input
// (the forward node keeps only its main output): with x̂ the normalised input and g = dY * scale,
//   LayerNorm: dX = rstd (g - mean(g) - x̂ mean(g x̂)),   RMSNorm: dX = rstd (g - x̂ mean(g x̂)),
// means over the normalised (last) axis; d scale = sum(dY x̂) and d bias = sum(dY) over the other axes.

import { Tensor } from '../graph.js';
import { add, equal, mul, reciprocal, sqrt, sub, where } from '../ops/elementwise.js';
import { reduceMean, reduceSum } from '../ops/norm.js';
import { unsqueeze } from '../ops/shape-ops.js';
import { normalizeAxis } from '../shape.js';
import { GradContext, GradRule, constantValues, expandTo, fail, floatAttr, gradOut, input, intAttr } from './context.js';

/** The reduced axes of a Reduce* node (axes input, or every axis), normalised and sorted. */
function reducedAxes(ctx: GradContext, x: Tensor): number[] {
  if (ctx.node.attributes.axes !== undefined) fail(ctx, 'axes as an attribute (opset < 18) is not supported');
  if (!ctx.inputs[1]) {
    if (intAttr(ctx, 'noop_with_empty_axes', 0)) fail(ctx, 'noop_with_empty_axes is not supported');
    return x.shape.map((_, i) => i);
  }
  return constantValues(ctx, 1)
    .map((a) => normalizeAxis(ctx.node.opType, a, x.rank))
    .sort((a, b) => a - b);
}

/** The output gradient with the reduced axes restored as size-1 axes (so it broadcasts against x). */
function keptGrad(ctx: GradContext, axes: number[]): Tensor {
  const gy = gradOut(ctx);
  return intAttr(ctx, 'keepdims', 1) ? gy : unsqueeze(gy, axes);
}

function reducedCount(ctx: GradContext, x: Tensor, axes: number[]): number {
  let n = 1;
  for (const a of axes) {
    const d = x.shape[a];
    if (typeof d !== 'number') fail(ctx, `${x.name} needs a static size on reduced axis ${a}`);
    n *= d;
  }
  return n;
}

/** Sum over every axis but the last: the gradient of a per-feature scale or bias [D]. */
function sumLeading(t: Tensor): Tensor {
  const axes = t.shape.slice(0, -1).map((_, i) => i);
  return axes.length ? reduceSum(t, axes, false) : t;
}

function lastAxisOnly(ctx: GradContext, x: Tensor): void {
  const axis = intAttr(ctx, 'axis', -1);
  if (normalizeAxis(ctx.node.opType, axis, x.rank) !== x.rank - 1) fail(ctx, 'only normalisation over the last axis is supported');
}

export const NORM_RULES: Readonly<Record<string, GradRule>> = {
  ReduceSum: (ctx) => {
    const x = input(ctx, 0);
    return [expandTo(keptGrad(ctx, reducedAxes(ctx, x)), x)];
  },
  ReduceMean: (ctx) => {
    const x = input(ctx, 0);
    const axes = reducedAxes(ctx, x);
    return [expandTo(mul(keptGrad(ctx, axes), 1 / reducedCount(ctx, x, axes)), x)];
  },
  ReduceSumSquare: (ctx) => {
    const x = input(ctx, 0);
    return [mul(keptGrad(ctx, reducedAxes(ctx, x)), mul(x, 2))];
  },
  ReduceMax: (ctx) => {
    const x = input(ctx, 0);
    const axes = reducedAxes(ctx, x);
    const y = intAttr(ctx, 'keepdims', 1) ? ctx.outputs[0] : unsqueeze(ctx.outputs[0], axes);
    return [where(equal(x, y), expandTo(keptGrad(ctx, axes), x), 0)]; // every maximal element gets the gradient
  },
  Softmax: (ctx) => {
    const y = ctx.outputs[0];
    const gy = gradOut(ctx);
    const axis = normalizeAxis('Softmax', intAttr(ctx, 'axis', -1), y.rank);
    return [mul(y, sub(gy, reduceSum(mul(gy, y), [axis], true)))];
  },
  LayerNormalization: (ctx) => {
    if (ctx.gradOutputs.slice(1).some((g) => g)) fail(ctx, 'the Mean / InvStdDev outputs cannot be differentiated');
    const [x, scale] = [input(ctx, 0), input(ctx, 1)];
    const bias = ctx.inputs[2];
    lastAxisOnly(ctx, x);
    const gy = gradOut(ctx);
    const eps = floatAttr(ctx, 'epsilon', 1e-5);
    const centred = sub(x, reduceMean(x, [-1], true)); // [..., D]
    const rstd = reciprocal(sqrt(add(reduceMean(mul(centred, centred), [-1], true), eps))); // [..., 1]
    const normed = mul(centred, rstd);
    let gx: Tensor | undefined;
    if (ctx.needs[0]) {
      const g = mul(gy, scale);
      const inner = sub(sub(g, reduceMean(g, [-1], true)), mul(normed, reduceMean(mul(g, normed), [-1], true)));
      gx = mul(inner, rstd);
    }
    return [gx, ctx.needs[1] ? sumLeading(mul(gy, normed)) : undefined, bias && ctx.needs[2] ? sumLeading(gy) : undefined];
  },
  RMSNormalization: (ctx) => {
    const [x, scale] = [input(ctx, 0), input(ctx, 1)];
    lastAxisOnly(ctx, x);
    const gy = gradOut(ctx);
    const eps = floatAttr(ctx, 'epsilon', 1e-5);
    const rstd = reciprocal(sqrt(add(reduceMean(mul(x, x), [-1], true), eps))); // [..., 1]
    const normed = mul(x, rstd);
    let gx: Tensor | undefined;
    if (ctx.needs[0]) {
      const g = mul(gy, scale);
      gx = mul(sub(g, mul(normed, reduceMean(mul(g, normed), [-1], true))), rstd);
    }
    return [gx, ctx.needs[1] ? sumLeading(mul(gy, normed)) : undefined];
  },
};
