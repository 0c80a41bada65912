// Where a model's weights come from, so model code asks for "norm weight", "linear layer", "embedding rows" and
// stays unaware of how they are stored:
// - dense: checkpoint tensors bound in place as external data (Gemm with transB; a Cast in the graph when the
//   file is fp16/bf16; embedding rows gathered in the file dtype, then widened);
// - quantized: linear layers as weight-only block-quantized codes (int8 / int4, com.microsoft MatMulNBits), the
//   embedding table as int8 blocks, small tensors as float32, all made at load time in JavaScript and handed to
//   ONNX Runtime as in-memory external data (ORT takes either in-memory or on-disk external data for one session,
//   not both, so a quantized graph holds every weight in memory).

import { Graph, Tensor } from '../graph/graph.js';
import { add, mul, sub } from '../graph/ops/elementwise.js';
import { linear, matMulNBits } from '../graph/ops/linalg.js';
import { cast, dimOf, gather, reshape } from '../graph/ops/shape-ops.js';
import { HostTensor } from '../io/host-tensor.js';
import { BlockQuantized, QuantBits, blocksPerRow, quantizeBlockwise } from './quantize-nbits.js';
import { WeightBinder } from './weight-binder.js';

/** y = x W^T (+ b) for x [..., in]. */
export type LinearLayer = (x: Tensor) => Tensor;

export interface ModelWeights {
  readonly graph: Graph;
  /** A small float32 tensor (norm weights, biases) of the given shape. */
  tensor(name: string, shape: readonly number[]): Tensor;
  /** Binds `${name}.weight` [outF, inF] (and `${name}.bias` [outF] when `bias`). */
  linear(name: string, outF: number, inF: number, bias?: boolean): LinearLayer;
  /** Rows `ids` (int64 [...]) of the table `name` [rows, width] as float32 [..., width]. */
  embedding(name: string, shape: readonly [number, number], ids: Tensor): Tensor;
}

export type WeightQuantization = 'none' | 'int8' | 'int4';

export interface QuantizedWeightsOptions {
  bits: QuantBits;
  /** Block size along the input features (default 32). */
  blockSize?: number;
  /** MatMulNBits accuracy_level: 4 = int8 activations (fast), 0 = float32 activations (exact dequantization). */
  accuracyLevel?: 0 | 4;
}

export function denseWeights(binder: WeightBinder): ModelWeights {
  return {
    graph: binder.graph,
    tensor: (name, shape) => binder.get(name, shape),
    linear(name, outF, inF, bias = false) {
      const w = binder.get(`${name}.weight`, [outF, inF]);
      const b = bias ? binder.get(`${name}.bias`, [outF]) : null;
      return (x) => linear(x, w, b);
    },
    embedding(name, shape, ids) {
      const table = binder.getStored(name, shape);
      return cast(gather(table, ids, 0), 'float32'); // [..., width]
    },
  };
}

/** Rows per read when quantizing a large table (bounds the transient memory to a few MB). */
const TABLE_CHUNK_ROWS = 4096;

export function quantizedWeights(binder: WeightBinder, options: QuantizedWeightsOptions): ModelWeights {
  const g = binder.graph;
  const blockSize = options.blockSize ?? 32;
  const standIn = (name: string, shape: readonly number[]) =>
    g.external(`missing.${name}`, 'float32', shape, { location: 'missing', offset: 0, length: shape.reduce((p, d) => p * d, 4) });
  const tensor = (name: string, shape: readonly number[]): Tensor => {
    const t = binder.read(name, shape);
    // missing or mis-shaped: the binder reports it in finish() before anything runs; a typed stand-in keeps
    // graph building going so that one error can list every problem
    return t ? g.inMemory(name, HostTensor.float32(t.shape, Float32Array.from(t.toFloat32()))) : standIn(name, shape);
  };
  return {
    graph: g,
    tensor,
    linear(name, outF, inF, bias = false) {
      const w = binder.read(`${name}.weight`, [outF, inF]);
      const b = bias ? tensor(`${name}.bias`, [outF]) : null;
      if (!w) {
        const s = standIn(`${name}.weight`, [outF, inF]);
        return (x) => linear(x, s, b);
      }
      const q = quantizeBlockwise(w, options.bits, blockSize);
      const codes = g.inMemory(`${name}.weight.codes`, q.codes);
      const scales = g.inMemory(`${name}.weight.scales`, q.scales);
      const opts = { k: inF, n: outF, bits: options.bits, blockSize, accuracyLevel: options.accuracyLevel ?? 4 };
      return (x) => {
        const y = matMulNBits(x, codes, scales, opts);
        return b ? add(y, b) : y;
      };
    },
    embedding(name, shape, ids) {
      const [rows, width] = shape;
      const where = binder.take(name, shape);
      if (!where) return gather(standIn(name, shape), ids, 0);
      const q = quantizeTable(where.file.readRows.bind(where.file, where.info.name), rows, width, blockSize);
      const blocks = blocksPerRow(width, blockSize);
      const codes = g.inMemory(`${name}.codes`, q.codes); // [rows, blocks, blockSize]
      const scales = g.inMemory(`${name}.scales`, new HostTensor('float32', [rows, blocks, 1], q.scales.data)); // [rows, blocks, 1]
      const picked = sub(cast(gather(codes, ids, 0), 'float32'), 128); // [..., blocks, blockSize]
      const values = mul(picked, gather(scales, ids, 0)); // [..., blocks, blockSize]
      const lead = ids.shape.map((_, i) => dimOf(ids, i));
      return reshape(values, [...lead, width]); // [..., width]
    },
  };
}

function failPartialBlock(name: string, width: number, blockSize: number): never {
  throw new Error(`${name}: width ${width} is not a multiple of the quantization block size ${blockSize}`);
}

/** int8 block quantization of a [rows, width] table read `TABLE_CHUNK_ROWS` rows at a time. */
function quantizeTable(readRows: (start: number, count: number) => HostTensor, rows: number, width: number, blockSize: number): BlockQuantized {
  if (width % blockSize !== 0) failPartialBlock('embedding', width, blockSize);
  const blocks = width / blockSize;
  const codes = new Uint8Array(rows * width);
  const scales = new Float32Array(rows * blocks);
  for (let start = 0; start < rows; start += TABLE_CHUNK_ROWS) {
    const count = Math.min(TABLE_CHUNK_ROWS, rows - start);
    const part = quantizeBlockwise(readRows(start, count), 8, blockSize);
    codes.set(part.codes.data, start * width);
    scales.set(part.scales.data, start * blocks);
  }
  return {
    bits: 8,
    blockSize,
    n: rows,
    k: width,
    codes: new HostTensor('uint8', [rows, blocks, blockSize], codes),
    scales: HostTensor.float32([rows * blocks], scales),
  };
}
