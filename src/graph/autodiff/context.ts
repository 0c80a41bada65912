// What a gradient rule sees of the node it differentiates, and the helpers every rule shares: attribute and
// constant-operand readers, static shapes, and summing a broadcast gradient back to an operand's shape.
// Rules emit ordinary ONNX nodes through the op builders, so the backward pass is just more graph.

import { AttrValue, NodeSpec, Tensor } from '../graph.js';
import { Shape, formatShape } from '../shape.js';
import { reduceSum } from '../ops/norm.js';
import { DimSpec, dimOf, expand, reshape } from '../ops/shape-ops.js';
import { scalarLike } from '../ops/check.js';

export interface GradContext {
  readonly node: NodeSpec;
  /** The node's inputs; null where an optional input is absent. */
  readonly inputs: ReadonlyArray<Tensor | null>;
  readonly outputs: readonly Tensor[];
  /** d loss / d output, undefined for outputs nothing downstream of the loss reads. */
  readonly gradOutputs: ReadonlyArray<Tensor | undefined>;
  /** Whether input i needs a gradient (it depends on a parameter and reaches the loss). */
  readonly needs: readonly boolean[];
}

/** Returns d loss / d input for each input (undefined where not needed or identically zero). */
export type GradRule = (ctx: GradContext) => ReadonlyArray<Tensor | undefined>;

export class AutodiffError extends Error {
  override name = 'AutodiffError';
}

export function fail(ctx: GradContext, why: string): never {
  throw new AutodiffError(`autodiff: ${ctx.node.opType} node "${ctx.node.name}": ${why}`);
}

export function input(ctx: GradContext, i: number): Tensor {
  const t = ctx.inputs[i];
  if (!t) fail(ctx, `input ${i} is absent`);
  return t;
}

/** The gradient of output `i`, which the engine guarantees for single-output nodes it calls. */
export function gradOut(ctx: GradContext, i = 0): Tensor {
  const g = ctx.gradOutputs[i];
  if (!g) fail(ctx, `no gradient for output ${i}`);
  return g;
}

function attr(ctx: GradContext, name: string): AttrValue | undefined {
  return ctx.node.attributes[name];
}

export function intAttr(ctx: GradContext, name: string, fallback: number): number {
  const v = attr(ctx, name);
  if (v === undefined) return fallback;
  if (typeof v !== 'number') fail(ctx, `attribute ${name} is not an integer`);
  return v;
}

export function floatAttr(ctx: GradContext, name: string, fallback: number): number {
  const v = attr(ctx, name);
  if (v === undefined) return fallback;
  if (typeof v === 'object' && v !== null && 'float' in v) return v.float;
  if (typeof v === 'number') return v;
  fail(ctx, `attribute ${name} is not a float`);
}

export function intsAttr(ctx: GradContext, name: string, fallback: readonly number[]): number[] {
  const v = attr(ctx, name);
  if (v === undefined) return [...fallback];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) fail(ctx, `attribute ${name} is not a list of integers`);
  return v as number[];
}

export function stringAttr(ctx: GradContext, name: string, fallback: string): string {
  const v = attr(ctx, name);
  if (v === undefined) return fallback;
  if (typeof v !== 'string') fail(ctx, `attribute ${name} is not a string`);
  return v;
}

/** The values of a constant operand (axes, pads, shapes, scales), which the rule needs at build time. */
export function constantValues(ctx: GradContext, i: number): number[] {
  const t = input(ctx, i);
  const value = t.graph.constantValue(t);
  if (!value) fail(ctx, `input ${i} (${t.name}) must be a constant to be differentiated through`);
  if (value.dtype === 'int64') return Array.from(value.data as BigInt64Array, Number);
  return Array.from(value.data as ArrayLike<number>);
}

/** A shape whose every dimension is known at build time (training graphs are built with static shapes). */
export function staticShape(ctx: GradContext, t: Tensor): number[] {
  if (!t.shape.every((d) => typeof d === 'number')) {
    fail(ctx, `${t.name}${formatShape(t.shape)} needs a static shape for this gradient`);
  }
  return t.shape as number[];
}

/** Run-time-capable dimensions of `t` (constants where known, Shape ops where symbolic). */
export function dimsOf(t: Tensor): DimSpec[] {
  return t.shape.map((d, i) => (typeof d === 'number' ? d : dimOf(t, i)));
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Sums a gradient of the broadcast result shape back to `target`'s shape: over leading axes target lacks and over
 * axes where target has a static 1 and the gradient does not.
 */
export function unbroadcast(grad: Tensor, target: Tensor): Tensor {
  const gs = grad.shape;
  const ts = target.shape;
  const lead = gs.length - ts.length;
  if (lead < 0) throw new AutodiffError(`autodiff: gradient ${grad.name}${formatShape(gs)} has lower rank than ${target.name}${formatShape(ts)}`);
  const axes: number[] = [];
  for (let i = 0; i < lead; i++) axes.push(i);
  ts.forEach((d, j) => {
    if (d === 1 && gs[lead + j] !== 1) axes.push(lead + j);
  });
  let r = axes.length ? reduceSum(grad, axes, true) : grad;
  if (lead > 0 || !sameShape(r.shape, ts)) r = reshape(r, dimsOf(target)); // [...target]
  return r;
}

/** Broadcasts `t` (whose shape broadcasts to like's) to like's full shape. */
export function expandTo(t: Tensor, like: Tensor): Tensor {
  if (sameShape(t.shape, like.shape)) return t;
  return expand(t, dimsOf(like));
}

/** Zeros with the shape of `like`, without storing a zero initializer of that size. */
export function zerosLike(like: Tensor): Tensor {
  return expand(scalarLike(like, 0), dimsOf(like));
}
