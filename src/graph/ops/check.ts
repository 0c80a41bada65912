// Checks shared by the op builders: errors name the op, the tensors and their shapes.

import { DType, HostTensor, floatToBfloat16, floatToHalf } from '../../io/host-tensor.js';
import { Graph, Tensor } from '../graph.js';
import { formatShape } from '../shape.js';

export const FLOAT_DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16'];

export function describe(t: Tensor): string {
  return `${t.name} ${t.dtype}${formatShape(t.shape)}`;
}

export function expectDtype(op: string, t: Tensor, allowed: readonly DType[]): void {
  if (!allowed.includes(t.dtype)) {
    throw new Error(`${op}: ${describe(t)} has dtype ${t.dtype}, expected one of ${allowed.join(', ')}`);
  }
}

export function expectFloat(op: string, t: Tensor): void {
  expectDtype(op, t, FLOAT_DTYPES);
}

export function expectSameDtype(op: string, ...ts: Tensor[]): DType {
  const d = ts[0].dtype;
  for (const t of ts) {
    if (t.dtype !== d) throw new Error(`${op}: dtypes differ: ${ts.map(describe).join(', ')}`);
  }
  return d;
}

export function expectRank(op: string, t: Tensor, rank: number | number[]): void {
  const ranks = Array.isArray(rank) ? rank : [rank];
  if (!ranks.includes(t.rank)) {
    throw new Error(`${op}: ${describe(t)} has rank ${t.rank}, expected rank ${ranks.join(' or ')}`);
  }
}

export function graphOf(op: string, ...ts: Array<Tensor | number | undefined | null>): Graph {
  for (const t of ts) if (t instanceof Tensor) return t.graph;
  throw new Error(`${op}: needs at least one tensor input`);
}

/** A scalar constant in the dtype of `like`, so arithmetic with plain numbers keeps the tensor's dtype. */
export function scalarLike(like: Tensor, value: number): Tensor {
  const g = like.graph;
  switch (like.dtype) {
    case 'float32':
      return g.scalar(value);
    case 'int64':
      return g.scalar(value, 'int64');
    case 'float16':
      return g.constant(new HostTensor('float16', [], Uint16Array.of(floatToHalf(value))), 'scalar_f16');
    case 'bfloat16':
      return g.constant(new HostTensor('bfloat16', [], Uint16Array.of(floatToBfloat16(value))), 'scalar_bf16');
    case 'int32':
      return g.constant(new HostTensor('int32', [], Int32Array.of(value)), 'scalar_i32');
    default:
      throw new Error(`no scalar constant for dtype ${like.dtype}`);
  }
}

export function asTensor(like: Tensor, v: Tensor | number): Tensor {
  return typeof v === 'number' ? scalarLike(like, v) : v;
}
