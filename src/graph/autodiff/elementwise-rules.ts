// Gradient rules of element-wise ops: arithmetic with NumPy broadcasting (summed back to each operand's shape),
// activations, comparisons' selections (Where, Max/Min, Clip) and casts. PyTorch's conventions where they are a
// choice: d|x|/dx = sign(x) (0 at 0), ReLU' = 0 at 0, clamp passes the gradient where min <= x <= max.

import { Tensor } from '../graph.js';
import { scalarLike } from '../ops/check.js';
import { add, cos, div, erf, exp, greater, less, log, mul, neg, pow, sigmoid, sin, sub, tanh, where } from '../ops/elementwise.js';
import { cast } from '../ops/shape-ops.js';
import { GradContext, GradRule, fail, gradOut, input, stringAttr, unbroadcast } from './context.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;

/** Applies `f` to the output gradient for input 0 of a unary op. */
const unary =
  (f: (gy: Tensor, x: Tensor, y: Tensor, ctx: GradContext) => Tensor): GradRule =>
  (ctx) => [ctx.needs[0] ? f(gradOut(ctx), input(ctx, 0), ctx.outputs[0], ctx) : undefined];

function sign(x: Tensor): Tensor {
  return x.graph.node1('Sign', [x], x.dtype, x.shape);
}

function greaterOrEqual(a: Tensor, b: Tensor | number): Tensor {
  const tb = typeof b === 'number' ? scalarLike(a, b) : b;
  return a.graph.node1('GreaterOrEqual', [a, tb], 'bool', a.shape);
}

function lessOrEqual(a: Tensor, b: Tensor): Tensor {
  return a.graph.node1('LessOrEqual', [a, b], 'bool', a.shape);
}

function and(a: Tensor, b: Tensor): Tensor {
  return a.graph.node1('And', [a, b], 'bool', a.shape);
}

/** d GELU / dx, exact (erf) or with the tanh approximation. */
function geluDerivative(x: Tensor, approximate: string): Tensor {
  if (approximate === 'tanh') {
    const x2 = mul(x, x);
    const t = tanh(mul(mul(x, add(mul(x2, GELU_CUBIC), 1)), SQRT_2_OVER_PI)); // tanh(k (x + c x^3))
    const dInner = mul(add(mul(x2, 3 * GELU_CUBIC), 1), SQRT_2_OVER_PI); // k (1 + 3 c x^2)
    return add(mul(add(t, 1), 0.5), mul(mul(mul(x, 0.5), sub(1, mul(t, t))), dInner));
  }
  const cdf = mul(add(erf(mul(x, Math.SQRT1_2)), 1), 0.5);
  const pdf = mul(exp(mul(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
  return add(cdf, mul(x, pdf));
}

export const ELEMENTWISE_RULES: Readonly<Record<string, GradRule>> = {
  Identity: unary((gy) => gy),
  Add: (ctx) => {
    const gy = gradOut(ctx);
    return [ctx.needs[0] ? unbroadcast(gy, input(ctx, 0)) : undefined, ctx.needs[1] ? unbroadcast(gy, input(ctx, 1)) : undefined];
  },
  Sum: (ctx) => {
    const gy = gradOut(ctx);
    return ctx.inputs.map((x, i) => (ctx.needs[i] && x ? unbroadcast(gy, x) : undefined));
  },
  Sub: (ctx) => {
    const gy = gradOut(ctx);
    return [ctx.needs[0] ? unbroadcast(gy, input(ctx, 0)) : undefined, ctx.needs[1] ? unbroadcast(neg(gy), input(ctx, 1)) : undefined];
  },
  Mul: (ctx) => {
    const gy = gradOut(ctx);
    const [a, b] = [input(ctx, 0), input(ctx, 1)];
    return [ctx.needs[0] ? unbroadcast(mul(gy, b), a) : undefined, ctx.needs[1] ? unbroadcast(mul(gy, a), b) : undefined];
  },
  Div: (ctx) => {
    const gy = gradOut(ctx);
    const [a, b] = [input(ctx, 0), input(ctx, 1)];
    const y = ctx.outputs[0];
    return [
      ctx.needs[0] ? unbroadcast(div(gy, b), a) : undefined,
      ctx.needs[1] ? unbroadcast(neg(div(mul(gy, y), b)), b) : undefined, // d(a/b)/db = -(a/b)/b
    ];
  },
  Pow: (ctx) => {
    const gy = gradOut(ctx);
    const [a, p] = [input(ctx, 0), input(ctx, 1)];
    const y = ctx.outputs[0];
    return [
      ctx.needs[0] ? unbroadcast(mul(gy, mul(pow(a, sub(p, 1)), p)), a) : undefined,
      ctx.needs[1] ? unbroadcast(mul(gy, mul(y, log(a))), p) : undefined,
    ];
  },
  Neg: unary((gy) => neg(gy)),
  Abs: unary((gy, x) => mul(gy, sign(x))),
  Relu: unary((gy, x) => where(greater(x, 0), gy, 0)),
  Sigmoid: unary((gy, _x, y) => mul(gy, mul(y, sub(1, y)))),
  Tanh: unary((gy, _x, y) => mul(gy, sub(1, mul(y, y)))),
  Exp: unary((gy, _x, y) => mul(gy, y)),
  Log: unary((gy, x) => div(gy, x)),
  Sqrt: unary((gy, _x, y) => div(mul(gy, 0.5), y)),
  Reciprocal: unary((gy, _x, y) => neg(mul(gy, mul(y, y)))),
  Sin: unary((gy, x) => mul(gy, cos(x))),
  Cos: unary((gy, x) => neg(mul(gy, sin(x)))),
  Erf: unary((gy, x) => mul(gy, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))),
  Softplus: unary((gy, x) => mul(gy, sigmoid(x))),
  Gelu: unary((gy, x, _y, ctx) => mul(gy, geluDerivative(x, stringAttr(ctx, 'approximate', 'none')))),
  Max: (ctx) => {
    if (ctx.inputs.length !== 2) fail(ctx, 'only the two-operand form is differentiable');
    const gy = gradOut(ctx);
    const [a, b] = [input(ctx, 0), input(ctx, 1)];
    const takeB = less(a, b); // ties go to a
    return [ctx.needs[0] ? unbroadcast(where(takeB, 0, gy), a) : undefined, ctx.needs[1] ? unbroadcast(where(takeB, gy, 0), b) : undefined];
  },
  Min: (ctx) => {
    if (ctx.inputs.length !== 2) fail(ctx, 'only the two-operand form is differentiable');
    const gy = gradOut(ctx);
    const [a, b] = [input(ctx, 0), input(ctx, 1)];
    const takeB = greater(a, b);
    return [ctx.needs[0] ? unbroadcast(where(takeB, 0, gy), a) : undefined, ctx.needs[1] ? unbroadcast(where(takeB, gy, 0), b) : undefined];
  },
  Clip: (ctx) => {
    if (ctx.needs[1] || ctx.needs[2]) fail(ctx, 'the bounds cannot be differentiated');
    const gy = gradOut(ctx);
    const x = input(ctx, 0);
    const lo = ctx.inputs[1];
    const hi = ctx.inputs[2];
    let pass: Tensor | undefined;
    if (lo) pass = greaterOrEqual(x, lo);
    if (hi) pass = pass ? and(pass, lessOrEqual(x, hi)) : lessOrEqual(x, hi);
    return [pass ? where(pass, gy, 0) : gy];
  },
  Where: (ctx) => {
    const gy = gradOut(ctx);
    const [cond, a, b] = [input(ctx, 0), input(ctx, 1), input(ctx, 2)];
    return [
      undefined,
      ctx.needs[1] ? unbroadcast(where(cond, gy, 0), a) : undefined,
      ctx.needs[2] ? unbroadcast(where(cond, 0, gy), b) : undefined,
    ];
  },
  Cast: unary((gy, x) => cast(gy, x.dtype)),
};
