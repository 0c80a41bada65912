// Normalisations, reductions and softmax.

import { HostTensor, floatToBfloat16, floatToHalf } from '../../io/host-tensor.js';
import { Tensor } from '../graph.js';
import { Dim, dimsCompatible, normalizeAxis } from '../shape.js';
import { describe, expectFloat, expectSameDtype } from './check.js';
import { add, div, mul, sqrt } from './elementwise.js';

function reduce(opType: string, x: Tensor, axes: readonly number[], keepDims: boolean): Tensor {
  const norm = axes.map((a) => normalizeAxis(opType, a, x.rank));
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!norm.includes(i)) shape.push(d);
    else if (keepDims) shape.push(1);
  });
  return x.graph.node1(opType, [x, x.graph.int64s(norm)], x.dtype, shape, { keepdims: keepDims ? 1 : 0 });
}

export const reduceMean = (x: Tensor, axes: readonly number[], keepDims = true): Tensor => reduce('ReduceMean', x, axes, keepDims);
export const reduceSum = (x: Tensor, axes: readonly number[], keepDims = true): Tensor => reduce('ReduceSum', x, axes, keepDims);
export const reduceMax = (x: Tensor, axes: readonly number[], keepDims = true): Tensor => reduce('ReduceMax', x, axes, keepDims);

export function softmax(x: Tensor, axis = -1): Tensor {
  expectFloat('Softmax', x);
  return x.graph.node1('Softmax', [x], x.dtype, x.shape, { axis: normalizeAxis('Softmax', axis, x.rank) });
}

function lastDimSize(op: string, x: Tensor): number {
  const d = x.shape[x.rank - 1];
  if (typeof d !== 'number') throw new Error(`${op}: ${describe(x)} needs a static last dimension`);
  return d;
}

function checkAffine(op: string, x: Tensor, p: Tensor | null | undefined, name: string): void {
  if (!p) return;
  expectSameDtype(op, x, p);
  if (p.rank !== 1 || !dimsCompatible(p.shape[0], x.shape[x.rank - 1])) {
    throw new Error(`${op}: ${name} ${describe(p)} does not match the last dimension of ${describe(x)}`);
  }
}

/** A [d] scale of ones in x's dtype (the ONNX norms take the scale in the input's type). */
function unitScale(x: Tensor, d: number): Tensor {
  const g = x.graph;
  if (x.dtype === 'float16') return g.constant(new HostTensor('float16', [d], new Uint16Array(d).fill(floatToHalf(1))), 'ones_f16');
  if (x.dtype === 'bfloat16') return g.constant(new HostTensor('bfloat16', [d], new Uint16Array(d).fill(floatToBfloat16(1))), 'ones_bf16');
  return g.constant(HostTensor.float32([d], new Float32Array(d).fill(1)), 'ones');
}

/** LayerNorm over the last dimension (biased variance), optional affine weight and bias. */
export function layerNorm(x: Tensor, eps: number, weight?: Tensor | null, bias?: Tensor | null): Tensor {
  const op = 'LayerNormalization';
  expectFloat(op, x);
  checkAffine(op, x, weight, 'weight');
  checkAffine(op, x, bias, 'bias');
  const d = lastDimSize(op, x);
  const scale = weight ?? unitScale(x, d);
  return x.graph.node1(op, bias ? [x, scale, bias] : [x, scale], x.dtype, x.shape, { axis: -1, epsilon: { float: eps } });
}

/** RMSNorm over the last dimension: x / sqrt(mean(x^2) + eps) * weight (opset 23 RMSNormalization). */
export function rmsNorm(x: Tensor, eps: number, weight?: Tensor | null): Tensor {
  const op = 'RMSNormalization';
  expectFloat(op, x);
  checkAffine(op, x, weight, 'weight');
  const d = lastDimSize(op, x);
  const scale = weight ?? unitScale(x, d);
  return x.graph.node1(op, [x, scale], x.dtype, x.shape, { axis: -1, epsilon: { float: eps } });
}

/**
 * RMSNorm over the channel axis of an NCHW map (per pixel), with per-channel weight and optional bias; written
 * with reductions so no transposes are needed.
 */
export function channelRmsNorm(x: Tensor, eps: number, weight: Tensor, bias?: Tensor | null): Tensor {
  expectFloat('channelRmsNorm', x);
  if (weight.rank !== 1 || !dimsCompatible(weight.shape[0], x.shape[1])) {
    throw new Error(`channelRmsNorm: weight ${describe(weight)} does not match the channels of ${describe(x)}`);
  }
  const g = x.graph;
  const c = weight.shape[0];
  const meanSq = reduceMean(mul(x, x), [1], true); // [B, 1, H, W]
  const normed = div(x, sqrt(add(meanSq, eps)));
  const w4 = g.node1('Reshape', [weight, g.int64s([1, -1, 1, 1])], weight.dtype, [1, c, 1, 1]); // [1, C, 1, 1]
  let y = mul(normed, w4);
  if (bias) y = add(y, g.node1('Reshape', [bias, g.int64s([1, -1, 1, 1])], bias.dtype, [1, c, 1, 1])); // [1, C, 1, 1]
  return y;
}
