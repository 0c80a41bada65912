// Where a model's weights come from, so model code asks for "norm weight", "linear layer", "embedding rows" and
// stays unaware of how they are stored:
// - dense: checkpoint tensors bound in place as external data (Gemm with transB; a Cast in the graph when the
//   file is fp16/bf16; embedding rows gathered in the file dtype, then widened);
// - quantized: linear layers as weight-only block-quantized codes (int8 / int4, com.microsoft MatMulNBits), the
//   embedding table as int8 blocks, small tensors as float32. These generated weights go to a GeneratedWeightSink:
//   into memory at once (inMemorySink), or into a cache file that ONNX Runtime then maps (src/nn/weight-cache.ts).
//   ORT takes either in-memory or on-disk external data for one session, not both, so every weight of a quantized
//   graph comes from the same sink.
// - widened: a 16-bit checkpoint's weights as float32 in a cache file (widenedWeights), for float32 compute with no
//   Cast in the graph.

import { Graph, Tensor } from '../graph/graph.js';
import { add, mul, sub } from '../graph/ops/elementwise.js';
import { linear, matMulNBits } from '../graph/ops/linalg.js';
import { cast, dimOf, gather, reshape } from '../graph/ops/shape-ops.js';
import { BYTES_PER_ELEMENT, DType, HostTensor, elementCount } from '../io/host-tensor.js';
import { WeightLocation } from '../io/weights.js';
import { BlockQuantized, QuantBits, blocksPerRow, quantizeBlockwise } from './quantize-nbits.js';
import { WeightBinder } from './weight-binder.js';
import { int8LinearProvider } from './int8-linear.js';

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

/** Writes a generated weight's bytes, in order, through `emit` (several pieces allowed). */
export type WeightWriter = (emit: (bytes: Uint8Array) => void) => void;

/**
 * Where the weights a model generates from its checkpoint (quantized or widened) go. `tensor` returns the graph
 * tensor for a generated weight; it may call `write` at once (in memory), later (when a cache file is written) or
 * never (when it is read from an existing cache file). Writers of one model are called, if at all, in the order the
 * tensors were asked for.
 */
export interface GeneratedWeightSink {
  tensor(graph: Graph, key: string, dtype: DType, shape: readonly number[], write: WeightWriter): Tensor;
}

/** Generated weights held in JavaScript memory and handed to ONNX Runtime at session creation (which copies them). */
export const inMemorySink: GeneratedWeightSink = {
  tensor(graph, key, dtype, shape, write) {
    if (dtype !== 'float32' && dtype !== 'uint8' && dtype !== 'int8') throw new Error(`generated weight ${key}: dtype ${dtype} cannot be held in memory`);
    const bytes = new Uint8Array(elementCount(shape) * BYTES_PER_ELEMENT[dtype]);
    let at = 0;
    write((piece) => {
      if (at + piece.byteLength > bytes.byteLength) throw new Error(`generated weight ${key}: writer emitted more than ${bytes.byteLength} bytes`);
      bytes.set(piece, at);
      at += piece.byteLength;
    });
    if (at !== bytes.byteLength) throw new Error(`generated weight ${key}: writer emitted ${at} of ${bytes.byteLength} bytes`);
    const value = dtype === 'float32' ? new HostTensor('float32', shape, new Float32Array(bytes.buffer)) : new HostTensor(dtype, shape, bytes);
    return graph.inMemory(key, value);
  },
};

export interface QuantizedWeightsOptions {
  bits: QuantBits;
  /** Block size along the input features (default 32). */
  blockSize?: number;
  /**
   * MatMulNBits accuracy_level: 4 = int8 activations, 0 = float32 activations (exact dequantization). Default: the
   * faster one measured for each width (bench/linear-variants.ts, bench/text-encoder.ts on Gemma-2-2B, 300 tokens):
   * 4 for int8 (level 0 runs int8 weights about 2x slower), 0 for int4 (level 0 is as fast or faster, keeps less
   * memory and is more accurate).
   */
  accuracyLevel?: 0 | 4;
}

export function defaultAccuracyLevel(bits: QuantBits): 0 | 4 {
  return bits === 4 ? 0 : 4;
}

/**
 * Weights as the checkpoint stores them, cast to float32 in the graph. `gatherWide` casts embedding tables before
 * the Gather (folded into one float32 table at load) instead of casting the gathered rows: for WebGPU adapters
 * without shader-f16 (SwiftShader), on which no 16-bit tensor may reach a kernel.
 */
export function denseWeights(binder: WeightBinder, options: { gatherWide?: boolean } = {}): ModelWeights {
  return {
    graph: binder.graph,
    tensor: (name, shape) => binder.get(name, shape),
    linear(name, outF, inF, bias = false) {
      const w = binder.get(`${name}.weight`, [outF, inF]);
      const b = bias ? binder.get(`${name}.bias`, [outF]) : null;
      return (x) => linear(x, w, b);
    },
    embedding(name, shape, ids) {
      if (options.gatherWide) return gather(binder.get(name, shape), ids, 0); // [..., width]
      const table = binder.getStored(name, shape);
      return cast(gather(table, ids, 0), 'float32'); // [..., width]
    },
  };
}

/** Rows per read when quantizing a large table (bounds the transient memory to a few MB). */
const TABLE_CHUNK_ROWS = 4096;

function bytesOf(t: HostTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * Weight-only quantized linear layers (MatMulNBits), an int8 block-quantized embedding table and float32 small
 * tensors, all generated from the checkpoint and placed by `sink` (default: in memory). The generated weights are
 * named `<name>` (small tensors), `<name>.weight.codes` / `.weight.scales` (linear layers) and `<name>.codes` /
 * `.scales` (embedding), so a cache file holding them reads like the checkpoint.
 */
export function quantizedWeights(binder: WeightBinder, options: QuantizedWeightsOptions, sink: GeneratedWeightSink = inMemorySink): ModelWeights {
  const g = binder.graph;
  const blockSize = options.blockSize ?? 32;
  const standIn = (name: string, shape: readonly number[]) =>
    g.external(`missing.${name}`, 'float32', shape, { location: 'missing', offset: 0, length: shape.reduce((p, d) => p * d, 4) });
  const tensor = (name: string, shape: readonly number[]): Tensor => {
    const where = binder.take(name, shape);
    // missing or mis-shaped: the binder reports it in finish() before anything runs; a typed stand-in keeps
    // graph building going so that one error can list every problem
    if (!where) return standIn(name, shape);
    return sink.tensor(g, name, 'float32', shape, (emit) => {
      const t = where.file.read(where.info.name);
      emit(bytesOf(HostTensor.float32(t.shape, Float32Array.from(t.toFloat32()))));
    });
  };
  return {
    graph: g,
    tensor,
    linear(name, outF, inF, bias = false) {
      const where = binder.take(`${name}.weight`, [outF, inF]);
      const b = bias ? tensor(`${name}.bias`, [outF]) : null;
      if (!where) {
        const s = standIn(`${name}.weight`, [outF, inF]);
        return (x) => linear(x, s, b);
      }
      // codes and scales come from one pass over the weight; the scales wait (a few MB) until they are written
      let pending: BlockQuantized | undefined;
      const quantized = () => (pending ??= quantizeBlockwise(where.file.read(where.info.name), options.bits, blockSize));
      const blocks = blocksPerRow(inF, blockSize);
      const codes = sink.tensor(g, `${name}.weight.codes`, 'uint8', [outF, blocks, (blockSize * options.bits) / 8], (emit) =>
        emit(bytesOf(quantized().codes)),
      );
      const scales = sink.tensor(g, `${name}.weight.scales`, 'float32', [outF * blocks], (emit) => {
        emit(bytesOf(quantized().scales));
        pending = undefined;
      });
      const opts = { k: inF, n: outF, bits: options.bits, blockSize, accuracyLevel: options.accuracyLevel ?? defaultAccuracyLevel(options.bits) };
      return (x) => {
        const y = matMulNBits(x, codes, scales, opts);
        return b ? add(y, b) : y;
      };
    },
    embedding(name, shape, ids) {
      const [rows, width] = shape;
      const where = binder.take(name, shape);
      if (!where) return gather(standIn(name, shape), ids, 0);
      if (width % blockSize !== 0) failPartialBlock(name, width, blockSize);
      const blocks = blocksPerRow(width, blockSize);
      // the codes are written chunk by chunk; the table's scales (4 bytes per block) are kept until written
      let pendingScales: Float32Array | undefined;
      const writeCodes = (emit: (bytes: Uint8Array) => void) => {
        const scales = new Float32Array(rows * blocks);
        for (let start = 0; start < rows; start += TABLE_CHUNK_ROWS) {
          const count = Math.min(TABLE_CHUNK_ROWS, rows - start);
          const part = quantizeBlockwise(where.file.readRows(where.info.name, start, count), 8, blockSize);
          emit(bytesOf(part.codes));
          scales.set(part.scales.data, start * blocks);
        }
        pendingScales = scales;
      };
      const codes = sink.tensor(g, `${name}.codes`, 'uint8', [rows, blocks, blockSize], writeCodes); // [rows, blocks, blockSize]
      const scales = sink.tensor(g, `${name}.scales`, 'float32', [rows, blocks, 1], (emit) => {
        if (!pendingScales) writeCodes(() => {});
        emit(new Uint8Array(pendingScales!.buffer));
        pendingScales = undefined;
      }); // [rows, blocks, 1]
      const picked = sub(cast(gather(codes, ids, 0), 'float32'), 128); // [..., blocks, blockSize]
      const values = mul(picked, gather(scales, ids, 0)); // [..., blocks, blockSize]
      const lead = ids.shape.map((_, i) => dimOf(ids, i));
      return reshape(values, [...lead, width]); // [..., width]
    },
  };
}

/**
 * int8 through the integer GEMM: linear layers as per-channel int8 weights x per-token int8 activations
 * (MatMulInteger, src/nn/int8-linear.ts) instead of block-quantized MatMulNBits; the embedding table and the small
 * tensors as quantizedWeights makes them. Generated weights: `<name>.weight.int8` [in, out], `<name>.weight.scale`.
 */
export function integerGemmWeights(binder: WeightBinder, sink: GeneratedWeightSink, blockSize = 32): ModelWeights {
  const base = quantizedWeights(binder, { bits: 8, blockSize }, sink);
  const provider = int8LinearProvider(sink, () => true);
  return {
    ...base,
    linear(name, outF, inF, bias = false) {
      const q = provider(binder, name, inF, outF, [outF, inF]);
      // a missing weight: the block-quantized path reports it (once) with every other problem
      if (!q) return base.linear(name, outF, inF, bias);
      const b = bias ? base.tensor(`${name}.bias`, [outF]) : null;
      return (x) => q(x, b);
    },
  };
}

/** Rows per piece when widening a matrix to float32 (a few MB per piece). */
const WIDEN_CHUNK_BYTES = 16 << 20;

/**
 * float32 copies of a 16-bit checkpoint's weights, made once for a cache file that ONNX Runtime maps: the graph
 * then has no Cast of any weight, so a session needs neither a load-time fold (seconds, a private float32 copy) nor
 * a Cast at every run. The embedding table keeps its file dtype (only the gathered rows are widened, in the graph).
 * Cache keys are the checkpoint names.
 */
export function widenedWeights(binder: WeightBinder, sink: GeneratedWeightSink): ModelWeights {
  const g = binder.graph;
  const standIn = (name: string, shape: readonly number[]) =>
    g.external(`missing.${name}`, 'float32', shape, { location: 'missing', offset: 0, length: shape.reduce((p, d) => p * d, 4) });
  /** Emits rows of `name` in pieces, converted by `convert`. */
  const copyRows = (where: WeightLocation, convert: (t: HostTensor) => Uint8Array) => (emit: (bytes: Uint8Array) => void) => {
    const { info, file } = where;
    if (info.shape.length < 2) return emit(convert(file.read(info.name)));
    const rows = info.shape[0];
    const step = Math.max(1, Math.floor(WIDEN_CHUNK_BYTES / (info.byteLength / rows)));
    for (let start = 0; start < rows; start += step) emit(convert(file.readRows(info.name, start, Math.min(step, rows - start))));
  };
  const toFloat32Bytes = (t: HostTensor) => (t.dtype === 'float32' ? bytesOf(t) : new Uint8Array(t.toFloat32().buffer));
  const tensor = (name: string, shape: readonly number[]): Tensor => {
    const where = binder.take(name, shape);
    return where ? sink.tensor(g, name, 'float32', shape, copyRows(where, toFloat32Bytes)) : standIn(name, shape);
  };
  return {
    graph: g,
    tensor,
    linear(name, outF, inF, bias = false) {
      const w = tensor(`${name}.weight`, [outF, inF]);
      const b = bias ? tensor(`${name}.bias`, [outF]) : null;
      return (x) => linear(x, w, b);
    },
    embedding(name, shape, ids) {
      const where = binder.take(name, shape);
      if (!where) return gather(standIn(name, shape), ids, 0);
      const table = sink.tensor(g, name, where.info.dtype, shape, copyRows(where, bytesOf));
      const rows = gather(table, ids, 0); // [..., width]
      return rows.dtype === 'float32' ? rows : cast(rows, 'float32');
    },
  };
}

function failPartialBlock(name: string, width: number, blockSize: number): never {
  throw new Error(`${name}: width ${width} is not a multiple of the quantization block size ${blockSize}`);
}
