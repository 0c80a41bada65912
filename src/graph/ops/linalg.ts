// Matrix products: MatMul with batch broadcasting, Gemm, and `linear` for PyTorch-layout weights [out, in].

import { Tensor } from '../graph.js';
import { Dim, broadcastShapes, dimsCompatible } from '../shape.js';
import { describe, expectFloat, expectSameDtype } from './check.js';
import { dimOf, reshape, shapeOf, slice } from './shape-ops.js';

export function matmul(a: Tensor, b: Tensor): Tensor {
  const dtype = expectSameDtype('MatMul', a, b);
  expectFloat('MatMul', a);
  if (a.rank < 1 || b.rank < 1) throw new Error(`MatMul: scalars are not allowed (${describe(a)}, ${describe(b)})`);
  const aShape = a.rank === 1 ? [1, a.shape[0]] : a.shape;
  const bShape = b.rank === 1 ? [b.shape[0], 1] : b.shape;
  const k1 = aShape[aShape.length - 1];
  const k2 = bShape[bShape.length - 2];
  if (!dimsCompatible(k1, k2)) {
    throw new Error(`MatMul: inner dimensions differ: ${describe(a)} x ${describe(b)} (${k1} vs ${k2})`);
  }
  const batch = broadcastShapes(`MatMul(${describe(a)}, ${describe(b)})`, [aShape.slice(0, -2), bShape.slice(0, -2)]);
  const shape: Dim[] = [...batch];
  if (a.rank > 1) shape.push(aShape[aShape.length - 2]);
  if (b.rank > 1) shape.push(bShape[bShape.length - 1]);
  return a.graph.node1('MatMul', [a, b], dtype, shape);
}

export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
}

/** Y = alpha * op(A) op(B) + beta * C for 2-D A and B. */
export function gemm(a: Tensor, b: Tensor, c: Tensor | null, opts: GemmOptions = {}): Tensor {
  const dtype = expectSameDtype('Gemm', a, b, ...(c ? [c] : []));
  if (a.rank !== 2 || b.rank !== 2) throw new Error(`Gemm: needs 2-D inputs, got ${describe(a)} and ${describe(b)}`);
  const [m, ka] = opts.transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [kb, n] = opts.transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (!dimsCompatible(ka, kb)) {
    throw new Error(`Gemm: inner dimensions differ: ${describe(a)}${opts.transA ? 'ᵀ' : ''} x ${describe(b)}${opts.transB ? 'ᵀ' : ''}`);
  }
  if (c) broadcastShapes(`Gemm bias ${describe(c)} onto [${m}, ${n}]`, [[m, n], c.shape]);
  return a.graph.node1('Gemm', [a, b, c], dtype, [m, n], {
    transA: opts.transA ? 1 : 0,
    transB: opts.transB ? 1 : 0,
    alpha: { float: opts.alpha ?? 1 },
    beta: { float: opts.beta ?? 1 },
  });
}

/**
 * y = x W^T + bias with W in PyTorch layout [out, in], for x of any rank (leading dims flattened for Gemm, whose
 * transB reads the weight in place: no transposed copy of the weight is made).
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (weight.rank !== 2) throw new Error(`linear: weight ${describe(weight)} must be [out, in]`);
  const [outF, inF] = weight.shape;
  const last = x.shape[x.rank - 1];
  if (!dimsCompatible(last, inF)) {
    throw new Error(`linear: input ${describe(x)} has ${last} features, weight ${describe(weight)} expects ${inF}`);
  }
  if (bias && (bias.rank !== 1 || !dimsCompatible(bias.shape[0], outF))) {
    throw new Error(`linear: bias ${describe(bias)} must be [${outF}]`);
  }
  if (x.rank === 2) return gemm(x, weight, bias ?? null, { transB: true });
  const flat = reshape(x, [-1, typeof inF === 'number' ? inF : dimOf(x, -1)]); // [prod(lead), in]
  const y = gemm(flat, weight, bias ?? null, { transB: true }); // [prod(lead), out]
  return restoreLeadingDims(y, x, outF);
}

/**
 * y [prod(lead), out] -> [...lead, out] with x's leading sizes (x [...lead, in], flattened for a 2-D product). Run-time
 * sizes come from x's shape, one size vector per distinct [...lead, out] in the graph (the labels name the sizes).
 */
export function restoreLeadingDims(y: Tensor, x: Tensor, outF: Dim): Tensor {
  const lead = x.shape.slice(0, -1);
  if (lead.every((d) => typeof d === 'number')) return reshape(y, [...(lead as number[]), outF as number]);
  const g = x.graph;
  const outShape = g.shared(`linear-output:${lead.map((d) => `<${d}>`).join(',')},${outF}`, () => {
    const leadShape = slice(shapeOf(x), [0], [0], [x.rank - 1]);
    return g.node1('Concat', [leadShape, g.int64s([outF as number])], 'int64', [x.rank], { axis: 0 });
  });
  return g.node1('Reshape', [y, outShape], y.dtype, [...lead, outF], { allowzero: 1 }); // run-time sizes may be 0
}

export function einsum(equation: string, inputs: Tensor[], outShape: Dim[]): Tensor {
  const dtype = expectSameDtype('Einsum', ...inputs);
  return inputs[0].graph.node1('Einsum', inputs, dtype, outShape, { equation });
}


export interface FusedMatMulOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
}

/**
 * alpha * op(A) @ op(B) with batch broadcasting, where op transposes the last two axes (ONNX Runtime contrib op
 * com.microsoft.FusedMatMul, run by MLAS with transposed packing: no transposed copy is materialised). Lets a
 * channels-first activation [B, C, N] meet a PyTorch-layout weight [out, in] without Transpose nodes.
 */
export function fusedMatmul(a: Tensor, b: Tensor, opts: FusedMatMulOptions = {}): Tensor {
  const op = 'FusedMatMul';
  const dtype = expectSameDtype(op, a, b);
  expectFloat(op, a);
  if (a.rank < 2 || b.rank < 2) throw new Error(`${op}: needs inputs of rank >= 2, got ${describe(a)} and ${describe(b)}`);
  const last2 = (t: Tensor, trans: boolean): [Dim, Dim] => {
    const [r, c] = t.shape.slice(-2);
    return trans ? [c, r] : [r, c];
  };
  const [m, ka] = last2(a, opts.transA ?? false);
  const [kb, n] = last2(b, opts.transB ?? false);
  if (!dimsCompatible(ka, kb)) {
    throw new Error(
      `${op}: inner dimensions differ: ${describe(a)}${opts.transA ? 'ᵀ' : ''} x ${describe(b)}${opts.transB ? 'ᵀ' : ''} (${ka} vs ${kb})`,
    );
  }
  const batch = broadcastShapes(`${op}(${describe(a)}, ${describe(b)})`, [a.shape.slice(0, -2), b.shape.slice(0, -2)]);
  return a.graph.node1(
    op,
    [a, b],
    dtype,
    [...batch, m, n],
    { alpha: { float: opts.alpha ?? 1 }, transA: opts.transA ? 1 : 0, transB: opts.transB ? 1 : 0 },
    'com.microsoft',
  );
}

export interface MatMulNBitsOptions {
  /** Input features K and output features N of the quantized weight. */
  k: number;
  n: number;
  bits: 4 | 8;
  blockSize: number;
  /**
   * ORT compute precision: 0 = unset (fp32 on CPU), 4 = int8 activations (fast int8 dot products, block-wise
   * quantized A; a small extra error).
   */
  accuracyLevel?: 0 | 1 | 2 | 3 | 4;
}

/**
 * y = a W^T for a weight-only block-quantized W [N, K] (com.microsoft MatMulNBits): `codes` uint8
 * [N, blocks, blockSize * bits / 8], `scales` [N * blocks] in a's dtype, default zero point 2^(bits-1).
 */
export function matMulNBits(a: Tensor, codes: Tensor, scales: Tensor, opts: MatMulNBitsOptions): Tensor {
  const op = 'MatMulNBits';
  expectFloat(op, a);
  const blocks = Math.ceil(opts.k / opts.blockSize);
  const blob = (opts.blockSize * opts.bits) / 8;
  const last = a.shape[a.rank - 1];
  if (!dimsCompatible(last, opts.k)) throw new Error(`${op}: input ${describe(a)} has ${last} features, weight expects ${opts.k}`);
  if (codes.dtype !== 'uint8' || codes.shape.join() !== [opts.n, blocks, blob].join()) {
    throw new Error(`${op}: codes ${describe(codes)} must be uint8 [${opts.n}, ${blocks}, ${blob}]`);
  }
  if (scales.dtype !== a.dtype || scales.shape.join() !== String(opts.n * blocks)) {
    throw new Error(`${op}: scales ${describe(scales)} must be ${a.dtype} [${opts.n * blocks}]`);
  }
  return a.graph.node1(
    op,
    [a, codes, scales],
    a.dtype,
    [...a.shape.slice(0, -1), opts.n],
    { K: opts.k, N: opts.n, bits: opts.bits, block_size: opts.blockSize, accuracy_level: opts.accuracyLevel ?? 0 },
    'com.microsoft',
  );
}
