// Dynamic int8 linear layers: per-output-channel symmetric int8 weights (quantized once, from the checkpoint) and
// per-token symmetric int8 activations (quantized at run time), multiplied by ONNX Runtime's integer GEMM
// (MatMulInteger, u8 x s8: the VNNI kernels of MLAS). ref: SANA.md §1.4 (the linear layers of a block)
//
// Per token r: s_r = max_k |x_rk| / 127 and q_rk = round(x_rk / s_r) + 128 (uint8, zero point 128, one for all rows
// so that MatMulInteger takes a scalar zero point); per output channel n: t_n = max_k |W_nk| / 127 and
// c_kn = round(W_nk / t_n) (int8, zero point 0; uint8 c + 128 with zero point 128 where MLAS's u8 x s8 kernel saturates,
// see INT8_WEIGHT_CODES). Then y_rn = s_r t_n sum_k (q_rk - 128) c_kn + b_n.
// Per-token scales follow the activations' row-to-row range (a DiT token's norm varies a lot across the grid);
// bench/int8-linear.ts compares this with per-tensor DynamicQuantizeLinear and com.microsoft DynamicQuantizeMatMul.

import { Graph, Tensor } from '../graph/graph.js';
import { abs, add, div, maximum, mul } from '../graph/ops/elementwise.js';
import { restoreLeadingDims } from '../graph/ops/linalg.js';
import { reduceMax } from '../graph/ops/norm.js';
import { cast, dimOf, reshape } from '../graph/ops/shape-ops.js';
import { HostTensor } from '../io/host-tensor.js';
import { describe } from '../graph/ops/check.js';
import { cpuFlags } from '../runtime/cpu-flags.js';
import type { GeneratedWeightSink } from './model-weights.js';
import type { WeightBinder } from './weight-binder.js';

/** y = x W^T + b with a layer's quantized weight; the bias (float32, from the checkpoint) is passed in. */
export type QuantizedLinear = (x: Tensor, bias: Tensor | null) => Tensor;

/**
 * Chooses the linear layers to quantize and makes them: undefined leaves the layer `prefix` to the dense path.
 * `fileShape` is the weight's checkpoint shape ([out, in], or [out, in, 1, 1] for a 1x1 conv).
 */
export type QuantizedLinearProvider = (
  binder: WeightBinder,
  prefix: string,
  inF: number,
  outF: number,
  fileShape: readonly number[],
) => QuantizedLinear | undefined;

/**
 * int8 layers for the prefixes `select` accepts, their codes and scales generated from the checkpoint into `sink`
 * (a weight cache file, see src/nn/weight-cache.ts) as `<prefix>.weight.int8` [in, out] and `.weight.scale` [out].
 */
export function int8LinearProvider(
  sink: GeneratedWeightSink,
  select: (prefix: string) => boolean,
  activations: Int8Activations = 'per-token',
): QuantizedLinearProvider {
  return (binder, prefix, inF, outF, fileShape) => {
    // a missing weight is left to the dense path, which reports it once with every other problem
    if (!select(prefix) || !binder.has(`${prefix}.weight`)) return undefined;
    const where = binder.take(`${prefix}.weight`, fileShape);
    if (!where) return undefined;
    const g = binder.graph;
    let pending: PerChannelInt8 | undefined;
    const quantized = () => (pending ??= quantizePerChannel(where.file.read(where.info.name), outF, inF));
    const bytes = (t: HostTensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const codes = sink.tensor(g, `${prefix}.weight.int8`, INT8_WEIGHT_CODES, [inF, outF], (emit) => emit(bytes(quantized().codes)));
    const scales = sink.tensor(g, `${prefix}.weight.scale`, 'float32', [outF], (emit) => {
      emit(bytes(quantized().scales));
      pending = undefined;
    });
    return (x, bias) => int8Linear(x, codes, scales, bias, activations);
  };
}

/**
 * How weight codes are stored for MatMulInteger. MLAS's u8 x s8 kernel for x86 CPUs without VNNI (AVX2 alone)
 * multiplies with vpmaddubsw, which adds the two products of each pair into a saturating int16: activation codes up
 * to 255 times weight codes up to 127 reach 64770 per pair and are clipped at 32767. Measured on an AVX2-only EPYC:
 * Gemma-2 tiny's int8 states fell to cosine 0.967-0.988 against transformers (0.999+ on VNNI CPUs), and 7-bit
 * weights, which stay below the limit, still moved the end-to-end image 7x more than VNNI's int8. There the codes
 * are stored as uint8 with zero point 128 (the same values shifted): MLAS's u8 x u8 kernel widens to int16 and adds
 * in int32, so nothing saturates and the products equal the s8 ones. VNNI and AMX kernels add in int32 either way.
 */
export const INT8_WEIGHT_CODES: 'int8' | 'uint8' = integerGemmSaturates() ? 'uint8' : 'int8';

/** x86 without VNNI or AMX; elsewhere, and where the flags cannot be read, signed codes as before. */
function integerGemmSaturates(): boolean {
  const flags = cpuFlags();
  return process.arch === 'x64' && flags.size > 0 && !['avx512_vnni', 'avx_vnni', 'amx_int8'].some((f) => flags.has(f));
}

/**
 * What the stored codes depend on besides the checkpoint, for weight-cache keys: empty for signed codes (so caches
 * made before this existed keep their names), the code type otherwise.
 */
export function int8WeightSettings(): Record<string, string> {
  return INT8_WEIGHT_CODES === 'int8' ? {} : { codes: INT8_WEIGHT_CODES };
}

export interface PerChannelInt8 {
  /** int8 [in, out] (MatMulInteger's B layout), as raw bytes; uint8 = int8 + 128 when asked for (INT8_WEIGHT_CODES). */
  readonly codes: HostTensor<'int8'> | HostTensor<'uint8'>;
  /** float32 [out]: w ~ code * scale. */
  readonly scales: HostTensor<'float32'>;
}

/**
 * Quantizes W [out, in] (any float dtype; a 1x1 conv kernel [out, in, 1, 1] as well) per output channel, to codes in
 * [-127, 127], stored as int8 or as uint8 shifted by 128.
 */
export function quantizePerChannel(weight: HostTensor, outF: number, inF: number, codeType: 'int8' | 'uint8' = INT8_WEIGHT_CODES): PerChannelInt8 {
  if (weight.size !== outF * inF) throw new Error(`quantizePerChannel: weight [${weight.shape.join(', ')}] is not [${outF}, ${inF}]`);
  const w = weight.toFloat32();
  const codes = new Int8Array(inF * outF);
  const scales = new Float32Array(outF);
  for (let n = 0; n < outF; n++) {
    let amax = 0;
    for (let k = 0; k < inF; k++) amax = Math.max(amax, Math.abs(w[n * inF + k]));
    const scale = Math.fround(amax / 127);
    scales[n] = scale;
    const inv = scale > 0 ? 1 / scale : 0;
    for (let k = 0; k < inF; k++) codes[k * outF + n] = Math.max(-127, Math.min(127, Math.round(w[n * inF + k] * inv)));
  }
  const bytes = new Uint8Array(codes.buffer);
  if (codeType === 'uint8') for (let i = 0; i < bytes.length; i++) bytes[i] = (bytes[i] + 128) & 0xff; // two's complement + 128
  return { codes: new HostTensor(codeType, [inF, outF], bytes), scales: HostTensor.float32([outF], scales) };
}

/** Smallest per-token scale: an all-zero row quantizes to zeros instead of dividing by 0. */
const MIN_SCALE = 1e-30;

/**
 * How activations are quantized: 'per-token' (one scale per row, as above) or 'per-tensor' (com.microsoft
 * DynamicQuantizeMatMul: one asymmetric uint8 scale and zero point for the whole input, quantization, integer GEMM,
 * scaling and bias fused in one kernel).
 */
export type Int8Activations = 'per-token' | 'per-tensor';

/** y = x W^T + b for x [..., in] float32 with int8 weights codes [in, out], scales [out]; -> [..., out]. */
export function int8Linear(x: Tensor, codes: Tensor, scales: Tensor, bias: Tensor | null, activations: Int8Activations = 'per-token'): Tensor {
  const g: Graph = x.graph;
  const [inF, outF] = codes.shape;
  if ((codes.dtype !== 'int8' && codes.dtype !== 'uint8') || codes.rank !== 2) throw new Error(`int8Linear: codes ${describe(codes)} must be int8 or uint8 [in, out]`);
  if (x.shape[x.rank - 1] !== inF) throw new Error(`int8Linear: input ${describe(x)} has ${x.shape[x.rank - 1]} features, weight expects ${inF}`);
  const flat = x.rank === 2 ? x : reshape(x, [-1, inF as number]); // [M, in]
  let y: Tensor;
  if (activations === 'per-tensor') {
    const wZero = weightZeroPoint(g, codes);
    y = g.node1('DynamicQuantizeMatMul', [flat, codes, scales, wZero, bias], 'float32', [flat.shape[0], outF], {}, 'com.microsoft'); // [M, out]
  } else {
    y = perTokenLinear(flat, codes, scales, bias);
  }
  if (x.rank === 2) return y;
  return restoreLeadingDims(y, x, outF); // [..., out]
}

/** 0 for int8 codes, 128 for uint8 ones (the same values shifted). */
function weightZeroPoint(g: Graph, codes: Tensor): Tensor {
  return codes.dtype === 'uint8'
    ? g.constant(new HostTensor('uint8', [], Uint8Array.of(128)), 'weight_zero_point_u8')
    : g.constant(new HostTensor('int8', [], Uint8Array.of(0)), 'weight_zero_point');
}

/** flat [M, in] -> [M, out] with per-token activation scales (see the header). */
function perTokenLinear(flat: Tensor, codes: Tensor, scales: Tensor, bias: Tensor | null): Tensor {
  const g = flat.graph;
  const outF = codes.shape[1];
  const rowScale = maximum(div(reduceMax(abs(flat), [1], true), 127), MIN_SCALE); // [M, 1]
  const m = dimOf(flat, 0);
  const zero = g.constant(new HostTensor('uint8', [], Uint8Array.of(128)), 'act_zero_point');
  // QuantizeLinear per axis 0 takes 1-D scales and zero points of length M
  const scaleM = reshape(rowScale, [m]); // [M]
  const zeroM = g.node1('Expand', [zero, m.value], 'uint8', [m.label]); // [M]
  const q = g.node1('QuantizeLinear', [flat, scaleM, zeroM], 'uint8', flat.shape, { axis: 0 }); // [M, in]
  const wZero = weightZeroPoint(g, codes);
  const acc = g.node1('MatMulInteger', [q, codes, zero, wZero], 'int32', [flat.shape[0], outF]); // [M, out]
  const y = mul(mul(cast(acc, 'float32'), rowScale), scales); // [M, out]
  return bias ? add(y, bias) : y;
}
