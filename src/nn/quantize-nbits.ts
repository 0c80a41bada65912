// Weight-only block quantization of linear layers for ONNX Runtime's com.microsoft MatMulNBits: each output row
// of W [N, K] is cut into blocks of `blockSize` along K; a block stores one float32 scale and `bits`-bit codes
// q = round(w / scale) + 2^(bits-1) (symmetric, scale = max|w| / (2^(bits-1) - 1)), so w ~ (q - 2^(bits-1)) * scale.
// Layout (MatMulNBits): codes uint8 [N, blocks, blockSize * bits / 8] (4-bit: two codes per byte, the lower K index
// in the low nibble), scales [N * blocks]. No zero-point input: the op's default zero point is 2^(bits-1).

import { HostTensor, halfToFloat } from '../io/host-tensor.js';

export type QuantBits = 4 | 8;

export interface BlockQuantized {
  readonly bits: QuantBits;
  readonly blockSize: number;
  /** Output features (rows of the PyTorch weight). */
  readonly n: number;
  /** Input features. */
  readonly k: number;
  /** uint8 [n, blocks, blockSize * bits / 8]. */
  readonly codes: HostTensor<'uint8'>;
  /** float32 [n * blocks]. */
  readonly scales: HostTensor<'float32'>;
}

export function blocksPerRow(k: number, blockSize: number): number {
  return Math.ceil(k / blockSize);
}

/** Quantizes W [N, K] (float32, float16 or bfloat16, PyTorch layout) row by row without widening it whole. */
export function quantizeBlockwise(weight: HostTensor, bits: QuantBits, blockSize = 32): BlockQuantized {
  if (weight.shape.length !== 2) throw new Error(`quantizeBlockwise: weight must be [out, in], got [${weight.shape.join(', ')}]`);
  if (!Number.isInteger(blockSize) || blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) {
    throw new Error(`quantizeBlockwise: block size must be a power of two >= 16 (got ${blockSize})`);
  }
  const [n, k] = weight.shape;
  const blocks = blocksPerRow(k, blockSize);
  const blob = (blockSize * bits) / 8;
  const codes = new Uint8Array(n * blocks * blob);
  const scales = new Float32Array(n * blocks);
  const zero = 1 << (bits - 1);
  const qmax = zero - 1;
  const row = new Float32Array(blocks * blockSize);
  const readRow = rowReader(weight, k);
  for (let r = 0; r < n; r++) {
    readRow(r, row);
    for (let b = 0; b < blocks; b++) {
      const start = b * blockSize;
      let amax = 0;
      for (let i = 0; i < blockSize; i++) {
        const a = Math.abs(row[start + i]);
        if (a > amax) amax = a;
      }
      const scale = Math.fround(amax / qmax);
      const inv = scale > 0 ? 1 / scale : 0;
      scales[r * blocks + b] = scale;
      const out = (r * blocks + b) * blob;
      if (bits === 8) {
        for (let i = 0; i < blockSize; i++) codes[out + i] = clampCode(Math.round(row[start + i] * inv) + zero, 255);
      } else {
        for (let i = 0; i < blockSize; i += 2) {
          const lo = clampCode(Math.round(row[start + i] * inv) + zero, 15);
          const hi = clampCode(Math.round(row[start + i + 1] * inv) + zero, 15);
          codes[out + i / 2] = lo | (hi << 4);
        }
      }
    }
  }
  return {
    bits,
    blockSize,
    n,
    k,
    codes: new HostTensor('uint8', [n, blocks, blob], codes),
    scales: HostTensor.float32([n * blocks], scales),
  };
}

/** The float32 weight [N, K] the codes stand for (for tests and error measurements). */
export function dequantizeBlockwise(q: BlockQuantized): Float32Array {
  const blocks = blocksPerRow(q.k, q.blockSize);
  const blob = (q.blockSize * q.bits) / 8;
  const zero = 1 << (q.bits - 1);
  const out = new Float32Array(q.n * q.k);
  const codes = q.codes.data;
  for (let r = 0; r < q.n; r++) {
    for (let c = 0; c < q.k; c++) {
      const b = Math.floor(c / q.blockSize);
      const i = c % q.blockSize;
      const byte = codes[(r * blocks + b) * blob + (q.bits === 8 ? i : i >> 1)];
      const code = q.bits === 8 ? byte : i & 1 ? byte >> 4 : byte & 15;
      out[r * q.k + c] = (code - zero) * q.scales.data[r * blocks + b];
    }
  }
  return out;
}

function clampCode(v: number, max: number): number {
  return v < 0 ? 0 : v > max ? max : v;
}

/** Copies row r of W into `dst` as float32 (zero-filling the padding of a last partial block). */
function rowReader(weight: HostTensor, k: number): (r: number, dst: Float32Array) => void {
  switch (weight.dtype) {
    case 'float32': {
      const src = weight.data as Float32Array;
      return (r, dst) => {
        dst.set(src.subarray(r * k, (r + 1) * k));
      };
    }
    case 'bfloat16': {
      const src = weight.data as Uint16Array;
      return (r, dst) => {
        const bitsView = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
        for (let i = 0; i < k; i++) bitsView[i] = src[r * k + i] << 16;
      };
    }
    case 'float16': {
      const src = weight.data as Uint16Array;
      return (r, dst) => {
        for (let i = 0; i < k; i++) dst[i] = halfToFloat(src[r * k + i]);
      };
    }
    default:
      throw new Error(`quantizeBlockwise: weight dtype ${weight.dtype} is not a float type`);
  }
}
