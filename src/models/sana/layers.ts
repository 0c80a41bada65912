// Checkpoint-bound linear layers in the two activation layouts the SANA graphs use: token-major [B, N, C]
// (Gemm, bias fused) and channels-first [B, C, N] (FusedMatMul with transposed operands, so moving between the
// layouts costs no Transpose node).

import { Tensor } from '../../graph/graph.js';
import { add } from '../../graph/ops/elementwise.js';
import { fusedMatmul, linear } from '../../graph/ops/linalg.js';
import { LoraLayout } from '../../nn/lora.js';
import { WeightBinder } from '../../nn/weight-binder.js';

/** y = x W^T + b on the last axis: [..., in] -> [..., out]. Weight `${prefix}.weight` [out, in]. */
export function linearTokens(
  w: WeightBinder,
  prefix: string,
  x: Tensor,
  inF: number,
  outF: number,
  bias = true,
  fileShape: readonly number[] = [outF, inF],
): Tensor {
  const quantized = w.quantizedLinear(prefix, inF, outF, fileShape);
  const b = bias ? w.get(`${prefix}.bias`, [outF]) : null;
  // int8 layers (transformer quantization) replace the Gemm; the bias and LoRA adapters stay float32
  const y = quantized ? quantized(x, b) : linear(x, w.get(`${prefix}.weight`, fileShape, [outF, inF]), b);
  return withLora(w, prefix, x, y, inF, outF, 'tokens');
}

/** y plus the layer's LoRA adapters' contribution, when it has any. */
export function withLora(w: WeightBinder, prefix: string, x: Tensor, y: Tensor, inF: number, outF: number, layout: LoraLayout): Tensor {
  const delta = w.loraDelta(prefix, x, inF, outF, layout);
  return delta ? add(y, delta) : y;
}

/**
 * Token-major in, channels-first out: [B, N, in] -> [B, out, N] = W x^T (+ b per channel). `fileShape` is the
 * checkpoint shape when it is not [out, in] (a 1x1 conv kernel [out, in, 1, 1]).
 */
export function linearToChannels(
  w: WeightBinder,
  prefix: string,
  x: Tensor,
  inF: number,
  outF: number,
  bias = true,
  fileShape: readonly number[] = [outF, inF],
): Tensor {
  const weight = w.get(`${prefix}.weight`, fileShape, [outF, inF]);
  const y = fusedMatmul(weight, x, { transB: true }); // [B, out, N]
  return withLora(w, prefix, x, bias ? add(y, w.get(`${prefix}.bias`, [outF], [outF, 1])) : y, inF, outF, 'to-channels');
}

/** Channels-first in, token-major out: [B, in, N] -> [B, N, out] = x^T W^T (+ b). */
export function linearFromChannels(
  w: WeightBinder,
  prefix: string,
  x: Tensor,
  inF: number,
  outF: number,
  bias = true,
  fileShape: readonly number[] = [outF, inF],
): Tensor {
  const weight = w.get(`${prefix}.weight`, fileShape, [outF, inF]);
  const y = fusedMatmul(x, weight, { transA: true, transB: true }); // [B, N, out]
  return withLora(w, prefix, x, bias ? add(y, w.get(`${prefix}.bias`, [outF])) : y, inF, outF, 'from-channels');
}
