// A tensor living in JavaScript memory: what safetensors files hold, what sessions take and return, and what the
// pipeline and schedulers manipulate between model calls.

/** int8 is held as its raw bytes in a Uint8Array (like bfloat16 in a Uint16Array): quantized weights only. */
export type DType = 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'uint8' | 'int8' | 'bool';

export type TypedArrayFor<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'int64'
    ? BigInt64Array
    : D extends 'int32'
      ? Int32Array
      : D extends 'float16' | 'bfloat16'
        ? Uint16Array
        : Uint8Array;

export type HostData = Float32Array | BigInt64Array | Int32Array | Uint16Array | Uint8Array;

export const BYTES_PER_ELEMENT: Record<DType, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  uint8: 1,
  int8: 1,
  bool: 1,
};

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class HostTensor<D extends DType = DType> {
  constructor(
    readonly dtype: D,
    readonly shape: readonly number[],
    readonly data: TypedArrayFor<D>,
  ) {
    const expected = elementCount(shape);
    if (data.length !== expected) {
      throw new Error(`HostTensor: shape [${shape.join(', ')}] needs ${expected} elements, data has ${data.length}`);
    }
  }

  get size(): number {
    return this.data.length;
  }

  static float32(shape: readonly number[], data?: Float32Array | number[]): HostTensor<'float32'> {
    const arr = data instanceof Float32Array ? data : data ? Float32Array.from(data) : new Float32Array(elementCount(shape));
    return new HostTensor('float32', shape, arr);
  }

  static int64(shape: readonly number[], data: BigInt64Array | number[] | bigint[]): HostTensor<'int64'> {
    const arr =
      data instanceof BigInt64Array ? data : BigInt64Array.from((data as Array<number | bigint>).map((v) => BigInt(v)));
    return new HostTensor('int64', shape, arr);
  }

  /** The tensor as float32 (converting fp16/bf16/int types); returns this tensor's own data when already float32. */
  toFloat32(): Float32Array {
    return toFloat32Array(this);
  }
}

export function toFloat32Array(t: HostTensor): Float32Array {
  switch (t.dtype) {
    case 'float32':
      return t.data as Float32Array;
    case 'bfloat16': {
      const src = t.data as Uint16Array;
      const bits = new Uint32Array(src.length);
      for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case 'float16': {
      const src = t.data as Uint16Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]);
      return out;
    }
    case 'int64': {
      const src = t.data as BigInt64Array;
      return Float32Array.from(src, (v) => Number(v));
    }
    case 'int8': {
      const src = t.data as Uint8Array;
      return Float32Array.from(new Int8Array(src.buffer, src.byteOffset, src.length));
    }
    default:
      return Float32Array.from(t.data as Int32Array | Uint8Array);
  }
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Round-to-nearest-even float32 -> float16 bits. */
export function floatToHalf(value: number): number {
  const f32 = new Float32Array([value]);
  const x = new Uint32Array(f32.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** Round-to-nearest-even float32 -> bfloat16 bits. */
export function floatToBfloat16(value: number): number {
  const f32 = new Float32Array([value]);
  const x = new Uint32Array(f32.buffer)[0];
  if ((x & 0x7fffffff) > 0x7f800000) return (x >>> 16) | 0x40;
  return (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}
