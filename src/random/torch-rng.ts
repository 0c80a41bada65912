// ref: SANA.md §7.2 (latent initialisation). Bit-exact torch.randn / torch.rand on a CPU generator
// (torch.Generator("cpu").manual_seed(seed)), and diffusers' randn_tensor on top of it, so the same seed gives the
// same initial latents as diffusers. What PyTorch does (ATen CPUGeneratorImpl.cpp, core/DistributionsHelper.h,
// core/TransformationHelper.h, native/cpu/DistributionTemplates.h, checked against the torch_randn fixture):
// - manual_seed(s): mt19937 seeded with s & 0xffffffff; the cached Box-Muller sample is dropped.
// - float uniform [0, 1): (next32 & 0xffffff) * 2^-24.  double uniform: ((hi << 32 | lo) & (2^53 - 1)) * 2^-53.
// - randn, float32, >= 16 contiguous elements (the AVX2 kernel): fill all with float uniforms, then Box-Muller on
//   each block of 16 (u1 = 1 - d[j], u2 = d[j + 8], j < 8) in float32 with the avx_mathfun log/sincos; if the
//   size is not a multiple of 16 the last 16 elements are refilled with fresh uniforms and transformed again.
// - randn, fewer than 16 elements: per element a float64 normal_distribution: draw u1, u2 (double uniforms),
//   r = sqrt(-2 log1p(-u2)), theta = 2 pi u1, return r cos(theta) and CACHE r sin(theta) in the generator for the
//   next scalar draw (so 7 elements use 4 pairs, and the cache survives into the next call).
// The >= 16 path reproduces x86-64 CPUs with AVX2 (what the fixture and any recent PC or server run). Without AVX2
// (e.g. torch on ARM) torch uses a scalar float32 Box-Muller with libm log/sin/cos, whose last bits differ.

import { HostTensor, elementCount } from '../io/host-tensor.js';
import { Mt19937 } from './mt19937.js';
import { avx2LogF32, avx2SinCosF32 } from './avx2-mathfun-f32.js';

export type TorchSeed = number | bigint;

const UINT64_LIMIT = 1n << 64n;
const INT64_MIN = -(1n << 63n);
const BOX_MULLER_BLOCK = 16;
const f32 = Math.fround;

/** A seed as Generator.manual_seed accepts it: in [-2^63, 2^64), negatives taken as two's complement. */
export function normaliseSeed(seed: TorchSeed, what = 'seed'): bigint {
  let value: bigint;
  if (typeof seed === 'bigint') {
    value = seed;
  } else {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`${what}: ${seed} is not a safe integer; pass seeds above 2^53 as bigint`);
    }
    value = BigInt(seed);
  }
  if (value < INT64_MIN || value >= UINT64_LIMIT) {
    throw new RangeError(`${what}: ${value} is outside [-2^63, 2^64)`);
  }
  return value < 0n ? value + UINT64_LIMIT : value;
}

/** torch.Generator("cpu"): an mt19937 engine plus the cached second Box-Muller sample of the double path. */
export class TorchGenerator {
  private engine: Mt19937;
  private cachedNormal: number | undefined;
  private seedValue: bigint;

  constructor(seed: TorchSeed = 67280421310721n) {
    this.seedValue = normaliseSeed(seed);
    this.engine = new Mt19937(Number(this.seedValue & 0xffffffffn));
  }

  /** Generator.manual_seed: reseeds and forgets any cached normal sample; returns this, as torch does. */
  manualSeed(seed: TorchSeed): this {
    this.seedValue = normaliseSeed(seed);
    this.engine = new Mt19937(Number(this.seedValue & 0xffffffffn));
    this.cachedNormal = undefined;
    return this;
  }

  /** Generator.initial_seed(). */
  initialSeed(): bigint {
    return this.seedValue;
  }

  random32(): number {
    return this.engine.nextUint32();
  }

  /** Uniform float32 in [0, 1) from 24 random bits. */
  uniformFloat32(): number {
    return (this.engine.nextUint32() & 0xffffff) * 2 ** -24;
  }

  /** Uniform float64 in [0, 1) from 53 of the bits of two draws (first draw is the high word). */
  uniformFloat64(): number {
    const high = this.engine.nextUint32();
    const low = this.engine.nextUint32();
    // (high << 32 | low) & (2^53 - 1) = (high & 0x1fffff) * 2^32 + low, exact in float64.
    return ((high & 0x1fffff) * 2 ** 32 + low) * 2 ** -53;
  }

  /** at::normal_distribution<double>(0, 1) with its one-sample cache. */
  standardNormalFloat64(): number {
    if (this.cachedNormal !== undefined) {
      const cached = this.cachedNormal;
      this.cachedNormal = undefined;
      return cached;
    }
    const u1 = this.uniformFloat64();
    const u2 = this.uniformFloat64();
    const radius = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.cachedNormal = radius * Math.sin(theta);
    return radius * Math.cos(theta);
  }
}

const TWO_PI_F32 = f32(2 * Math.PI);

/** Box-Muller on 16 float32 uniforms in place (normal_fill_16_AVX2 with mean 0, std 1). */
function boxMullerBlock16(data: Float32Array, offset: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = f32(1 - data[offset + j]);
    const u2 = data[offset + j + 8];
    const radius = f32(Math.sqrt(f32(-2 * avx2LogF32(u1))));
    const theta = f32(TWO_PI_F32 * u2);
    const [sin, cos] = avx2SinCosF32(theta);
    // The kernel ends with fmadd(n, std = 1, mean = 0): exact, except that it turns -0 into +0.
    data[offset + j] = f32(radius * cos) + 0;
    data[offset + j + 8] = f32(radius * sin) + 0;
  }
}

function checkShape(shape: readonly number[], what: string): number {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new RangeError(`${what}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return elementCount(shape);
}

/** Fills `out` with torch.randn's float32 values; the generator's state advances exactly as torch's does. */
export function fillRandn(out: Float32Array, generator: TorchGenerator): Float32Array {
  const size = out.length;
  if (size >= BOX_MULLER_BLOCK) {
    for (let i = 0; i < size; i++) out[i] = generator.uniformFloat32();
    for (let i = 0; i + BOX_MULLER_BLOCK <= size; i += BOX_MULLER_BLOCK) boxMullerBlock16(out, i);
    if (size % BOX_MULLER_BLOCK !== 0) {
      const tail = size - BOX_MULLER_BLOCK;
      for (let i = 0; i < BOX_MULLER_BLOCK; i++) out[tail + i] = generator.uniformFloat32();
      boxMullerBlock16(out, tail);
    }
  } else {
    for (let i = 0; i < size; i++) out[i] = generator.standardNormalFloat64();
  }
  return out;
}

/** torch.randn(shape, generator=generator, dtype=torch.float32) on the CPU. */
export function torchRandn(shape: readonly number[], generator: TorchGenerator): HostTensor<'float32'> {
  const size = checkShape(shape, 'torchRandn');
  return HostTensor.float32([...shape], fillRandn(new Float32Array(size), generator));
}

/** torch.rand(shape, generator=generator, dtype=torch.float32) on the CPU. */
export function torchRand(shape: readonly number[], generator: TorchGenerator): HostTensor<'float32'> {
  const size = checkShape(shape, 'torchRand');
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = generator.uniformFloat32();
  return HostTensor.float32([...shape], data);
}

/**
 * diffusers.utils.torch_utils.randn_tensor with CPU generators: one seed draws the whole tensor from one
 * generator; a list of seeds (one per batch row, shape[0] of them) draws each row with its own generator as a
 * separate randn of shape [1, ...rest]. A list of length 1 counts as a single seed, as in diffusers.
 */
export function randnTensor(shape: readonly number[], seeds: TorchSeed | readonly TorchSeed[]): HostTensor<'float32'> {
  const size = checkShape(shape, 'randnTensor');
  if (!Array.isArray(seeds) || seeds.length === 1) {
    const seed = Array.isArray(seeds) ? seeds[0] : (seeds as TorchSeed);
    return torchRandn(shape, new TorchGenerator(seed));
  }
  const batch = shape[0];
  if (shape.length === 0 || seeds.length !== batch) {
    throw new RangeError(
      `randnTensor: got ${seeds.length} seeds for shape [${shape.join(', ')}]; pass one seed per batch row (shape[0])`,
    );
  }
  const data = new Float32Array(size);
  const rowSize = batch === 0 ? 0 : size / batch;
  seeds.forEach((seed, row) => {
    const generator = new TorchGenerator(normaliseSeed(seed, `randnTensor: seeds[${row}]`));
    fillRandn(data.subarray(row * rowSize, (row + 1) * rowSize), generator);
  });
  return HostTensor.float32([...shape], data);
}
