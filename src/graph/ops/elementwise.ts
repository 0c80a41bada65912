// Element-wise arithmetic (NumPy broadcasting) and activations.

import { Tensor } from '../graph.js';
import { broadcastShapes } from '../shape.js';
import { asTensor, describe, expectFloat, expectSameDtype, graphOf } from './check.js';

function binary(opType: string, a: Tensor | number, b: Tensor | number): Tensor {
  const g = graphOf(opType, a, b);
  const ta = a instanceof Tensor ? a : asTensor(b as Tensor, a);
  const tb = b instanceof Tensor ? b : asTensor(ta, b);
  const dtype = expectSameDtype(opType, ta, tb);
  const shape = broadcastShapes(`${opType}(${describe(ta)}, ${describe(tb)})`, [ta.shape, tb.shape]);
  return g.node1(opType, [ta, tb], dtype, shape);
}

export const add = (a: Tensor | number, b: Tensor | number): Tensor => binary('Add', a, b);
export const sub = (a: Tensor | number, b: Tensor | number): Tensor => binary('Sub', a, b);
export const mul = (a: Tensor | number, b: Tensor | number): Tensor => binary('Mul', a, b);
export const div = (a: Tensor | number, b: Tensor | number): Tensor => binary('Div', a, b);
export const pow = (a: Tensor | number, b: Tensor | number): Tensor => binary('Pow', a, b);
export const maximum = (a: Tensor | number, b: Tensor | number): Tensor => binary('Max', a, b);
export const minimum = (a: Tensor | number, b: Tensor | number): Tensor => binary('Min', a, b);

function comparison(opType: string, a: Tensor, b: Tensor | number): Tensor {
  const tb = asTensor(a, b);
  expectSameDtype(opType, a, tb);
  const shape = broadcastShapes(`${opType}(${describe(a)}, ${describe(tb)})`, [a.shape, tb.shape]);
  return a.graph.node1(opType, [a, tb], 'bool', shape);
}

export const less = (a: Tensor, b: Tensor | number): Tensor => comparison('Less', a, b);
export const greater = (a: Tensor, b: Tensor | number): Tensor => comparison('Greater', a, b);
export const equal = (a: Tensor, b: Tensor | number): Tensor => comparison('Equal', a, b);

function unaryFloat(opType: string, x: Tensor, attributes = {}): Tensor {
  expectFloat(opType, x);
  return x.graph.node1(opType, [x], x.dtype, x.shape, attributes);
}

export const relu = (x: Tensor): Tensor => unaryFloat('Relu', x);
export const sigmoid = (x: Tensor): Tensor => unaryFloat('Sigmoid', x);
export const tanh = (x: Tensor): Tensor => unaryFloat('Tanh', x);
export const exp = (x: Tensor): Tensor => unaryFloat('Exp', x);
export const log = (x: Tensor): Tensor => unaryFloat('Log', x);
export const sqrt = (x: Tensor): Tensor => unaryFloat('Sqrt', x);
export const reciprocal = (x: Tensor): Tensor => unaryFloat('Reciprocal', x);
export const sin = (x: Tensor): Tensor => unaryFloat('Sin', x);
export const cos = (x: Tensor): Tensor => unaryFloat('Cos', x);
export const erf = (x: Tensor): Tensor => unaryFloat('Erf', x);
export const abs = (x: Tensor): Tensor => x.graph.node1('Abs', [x], x.dtype, x.shape);
export const neg = (x: Tensor): Tensor => x.graph.node1('Neg', [x], x.dtype, x.shape);

/** SiLU(x) = x * sigmoid(x); ONNX has no SiLU op, and ORT fuses this pair on CPU. */
export function silu(x: Tensor): Tensor {
  return mul(x, sigmoid(x));
}

/** GELU with the tanh approximation (opset 20 Gelu, approximate = "tanh"). */
export function geluTanh(x: Tensor): Tensor {
  return unaryFloat('Gelu', x, { approximate: 'tanh' });
}

/** Exact (erf) GELU. */
export function gelu(x: Tensor): Tensor {
  return unaryFloat('Gelu', x, { approximate: 'none' });
}

export function not(x: Tensor): Tensor {
  return x.graph.node1('Not', [x], 'bool', x.shape);
}

/** where(cond, a, b): a where cond is true, else b (broadcasting all three). */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  if (cond.dtype !== 'bool') throw new Error(`Where: condition ${describe(cond)} must be bool`);
  // two plain numbers give a float32 result (e.g. an additive attention mask from a bool mask)
  const ta = a instanceof Tensor ? a : b instanceof Tensor ? asTensor(b, a) : cond.graph.scalar(a);
  const tb = asTensor(ta, b);
  const dtype = expectSameDtype('Where', ta, tb);
  const shape = broadcastShapes(`Where(${describe(cond)}, ${describe(ta)}, ${describe(tb)})`, [cond.shape, ta.shape, tb.shape]);
  return cond.graph.node1('Where', [cond, ta, tb], dtype, shape);
}

export function clip(x: Tensor, min?: number, max?: number): Tensor {
  const lo = min === undefined ? null : asTensor(x, min);
  const hi = max === undefined ? null : asTensor(x, max);
  return x.graph.node1('Clip', [x, lo, hi], x.dtype, x.shape);
}
