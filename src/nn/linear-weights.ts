// Where a model's linear layers get their weights: dense (the checkpoint tensor bound in place, Gemm with transB,
// a Cast when the file is fp16/bf16) or weight-only block-quantized (int8 / int4 codes made at load time from the
// checkpoint, run by com.microsoft MatMulNBits). Models ask for `linear(name, out, in)` and stay unaware of which.

import { Tensor } from '../graph/graph.js';
import { add } from '../graph/ops/elementwise.js';
import { linear, matMulNBits } from '../graph/ops/linalg.js';
import { QuantBits, quantizeBlockwise } from './quantize-nbits.js';
import { WeightBinder } from './weight-binder.js';

/** y = x W^T (+ b) for x [..., in]. */
export type LinearLayer = (x: Tensor) => Tensor;

export interface LinearWeights {
  /** Binds `${name}.weight` [outF, inF] (and `${name}.bias` [outF] when `bias`). */
  linear(name: string, outF: number, inF: number, bias?: boolean): LinearLayer;
}

export type WeightQuantization = 'none' | 'int8' | 'int4';

export interface QuantizedLinearOptions {
  bits: QuantBits;
  /** Block size along the input features (default 32). */
  blockSize?: number;
  /** MatMulNBits accuracy_level: 4 = int8 activations (fast), 0 = float32 activations (exact dequantization). */
  accuracyLevel?: 0 | 4;
}

export function denseLinearWeights(binder: WeightBinder): LinearWeights {
  return {
    linear(name, outF, inF, bias = false) {
      const w = binder.get(`${name}.weight`, [outF, inF]);
      const b = bias ? binder.get(`${name}.bias`, [outF]) : null;
      return (x) => linear(x, w, b);
    },
  };
}

/**
 * Weights quantized in JavaScript while the graph is built; the codes live in memory (see Graph.inMemory), so
 * the checkpoint file is read once and never widened to float32 as a whole.
 */
export function quantizedLinearWeights(binder: WeightBinder, options: QuantizedLinearOptions): LinearWeights {
  const blockSize = options.blockSize ?? 32;
  return {
    linear(name, outF, inF, bias = false) {
      const g = binder.graph;
      const w = binder.read(`${name}.weight`, [outF, inF]);
      const b = bias ? binder.get(`${name}.bias`, [outF]) : null;
      if (!w) {
        // missing or mis-shaped: the binder reports it in finish(), before anything runs; a typed stand-in keeps
        // graph building going so that one error can list every problem
        const standIn = g.external(`missing.${name}.weight`, 'float32', [outF, inF], { location: 'missing', offset: 0, length: outF * inF * 4 });
        return (x) => linear(x, standIn, b);
      }
      const q = quantizeBlockwise(w, options.bits, blockSize);
      const codes = g.inMemory(`${name}.codes`, q.codes);
      const scales = g.inMemory(`${name}.scales`, q.scales);
      const opts = { k: inF, n: outF, bits: options.bits, blockSize, accuracyLevel: options.accuracyLevel ?? 4 };
      return (x) => {
        const y = matMulNBits(x, codes, scales, opts);
        return b ? add(y, b) : y;
      };
    },
  };
}
