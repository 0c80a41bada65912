// Gradient rules of ops that only move elements: the gradient moves back the same way (reshape back, inverse
// permutation, split what was concatenated, pad what was sliced, scatter-add what was gathered, sum what was
// broadcast).

import { Tensor } from '../graph.js';
import { concat, expand, pad, reshape, slice, split, transpose } from '../ops/shape-ops.js';
import { normalizeAxis } from '../shape.js';
import { scalarLike } from '../ops/check.js';
import { GradContext, GradRule, constantValues, dimsOf, fail, gradOut, input, intAttr, intsAttr, staticShape, stringAttr, unbroadcast, zerosLike } from './context.js';

/** The gradient reshaped back to input 0's shape (Reshape, Squeeze, Unsqueeze, Flatten). */
const reshapeBack: GradRule = (ctx) => [reshape(gradOut(ctx), dimsOf(input(ctx, 0))), ...ctx.inputs.slice(1).map(() => undefined)];

function inversePermutation(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

/** Pad's gradient: the window of dY the input occupied (constant mode, non-negative pads). */
function padGrad(ctx: GradContext): Tensor {
  const x = input(ctx, 0);
  if (stringAttr(ctx, 'mode', 'constant') !== 'constant') fail(ctx, 'only constant padding is differentiable here');
  if (ctx.inputs[3]) fail(ctx, 'the axes input is not supported');
  const pads = constantValues(ctx, 1);
  if (pads.some((p) => p < 0)) fail(ctx, 'negative pads (cropping) are not supported');
  const axes: number[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  for (let a = 0; a < x.rank; a++) {
    const before = pads[a];
    const after = pads[a + x.rank];
    if (!before && !after) continue;
    axes.push(a);
    starts.push(before);
    ends.push(after ? -after : 2 ** 62);
  }
  return axes.length ? slice(gradOut(ctx), axes, starts, ends) : gradOut(ctx);
}

/** Slice's gradient: dY padded with zeros back to the input's extent (unit steps). */
function sliceGrad(ctx: GradContext): Tensor {
  const x = input(ctx, 0);
  const shape = staticShape(ctx, x);
  const starts = constantValues(ctx, 1);
  const ends = constantValues(ctx, 2);
  const axes = ctx.inputs[3] ? constantValues(ctx, 3) : starts.map((_, i) => i);
  const steps = ctx.inputs[4] ? constantValues(ctx, 4) : starts.map(() => 1);
  const pads = new Array<number>(2 * x.rank).fill(0);
  axes.forEach((axis, i) => {
    if (steps[i] !== 1) fail(ctx, `only unit steps are differentiable (step ${steps[i]} on axis ${axis})`);
    const a = normalizeAxis('Slice', axis, x.rank);
    const d = shape[a];
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    const s = clamp(starts[i]);
    const e = Math.max(clamp(ends[i]), s);
    pads[a] = s;
    pads[a + x.rank] = d - e;
  });
  return pads.some((p) => p) ? pad(gradOut(ctx), pads) : gradOut(ctx);
}

/** Gather's gradient: dY scatter-added into zeros at the gathered rows (rows gathered twice get both). */
function gatherGrad(ctx: GradContext): Tensor {
  const [x, indices] = [input(ctx, 0), input(ctx, 1)];
  const axis = normalizeAxis('Gather', intAttr(ctx, 'axis', 0), x.rank);
  const gy = gradOut(ctx);
  const k = indices.rank;
  // move the index axes of dY to the front: [...I, ...x[:axis], ...x[axis+1:]]
  const lead = Array.from({ length: axis }, (_, i) => i);
  const idxAxes = Array.from({ length: k }, (_, i) => axis + i);
  const rest = Array.from({ length: gy.rank - axis - k }, (_, i) => axis + k + i);
  const updates = axis === 0 ? gy : transpose(gy, [...idxAxes, ...lead, ...rest]);
  const xDims = dimsOf(x);
  const targetDims = [xDims[axis], ...xDims.slice(0, axis), ...xDims.slice(axis + 1)];
  const zeros = expand(scalarLike(x, 0), targetDims); // [X_axis, ...x[:axis], ...x[axis+1:]]
  const idx = x.graph.node1('Unsqueeze', [indices, x.graph.int64s([k])], indices.dtype, [...indices.shape, 1]); // [...I, 1]
  const targetShape = [x.shape[axis], ...x.shape.slice(0, axis), ...x.shape.slice(axis + 1)];
  const scattered = x.graph.node1('ScatterND', [zeros, idx, updates], x.dtype, targetShape, { reduction: 'add' });
  if (axis === 0) return scattered;
  return transpose(scattered, [...Array.from({ length: axis }, (_, i) => i + 1), 0, ...Array.from({ length: x.rank - axis - 1 }, (_, i) => axis + 1 + i)]);
}

export const SHAPE_RULES: Readonly<Record<string, GradRule>> = {
  Reshape: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Flatten: reshapeBack,
  Transpose: (ctx) => [transpose(gradOut(ctx), inversePermutation(intsAttr(ctx, 'perm', [])))],
  Expand: (ctx) => [unbroadcast(gradOut(ctx), input(ctx, 0)), undefined],
  Concat: (ctx) => {
    const axis = normalizeAxis('Concat', intAttr(ctx, 'axis', 0), ctx.outputs[0].rank);
    const sizes = ctx.inputs.map((t) => {
      const d = t!.shape[axis];
      if (typeof d !== 'number') fail(ctx, `${t!.name} needs a static size on the concatenation axis`);
      return d;
    });
    const pieces = split(gradOut(ctx), axis, sizes);
    return pieces.map((p, i) => (ctx.needs[i] ? p : undefined));
  },
  Split: (ctx) => {
    const x = input(ctx, 0);
    const axis = normalizeAxis('Split', intAttr(ctx, 'axis', 0), x.rank);
    const pieces = ctx.outputs.map((o, i) => ctx.gradOutputs[i] ?? zerosLike(o));
    return [concat(pieces, axis), undefined];
  },
  Slice: (ctx) => [sliceGrad(ctx), undefined, undefined, undefined, undefined],
  Pad: (ctx) => [padGrad(ctx), undefined, undefined, undefined],
  Gather: (ctx) => [gatherGrad(ctx), undefined],
};
