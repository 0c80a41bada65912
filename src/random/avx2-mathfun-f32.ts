// ref: SANA.md §7.2. Float32 log and sin/cos exactly as PyTorch's AVX2 normal kernel computes them
// (aten/src/ATen/native/cpu/avx_mathfun.h: Cephes polynomials by J. Pommier / G. Garberoglio), so that
// torch.randn on a CPU generator can be reproduced bit for bit. Every operation rounds to float32 like the
// vector instruction does. GCC builds that file with -mfma and contracts some multiply/add pairs into fused
// multiply-adds (a multiplication whose only use is an addition, taking the first such multiplication in
// program order); the fixture's numbers match only with exactly those contractions, marked "fused" below.

const f32 = Math.fround;

const bitsView = new Float32Array(1);
const intView = new Int32Array(bitsView.buffer);

function floatBits(x: number): number {
  bitsView[0] = x;
  return intView[0];
}

function floatFromBits(bits: number): number {
  intView[0] = bits;
  return bitsView[0];
}

/** Adjacent float32 in the direction of `towards` (x must be a nonzero finite float32). */
function adjacentFloat(x: number, towardsLarger: boolean): number {
  bitsView[0] = x;
  // For positive floats a larger bit pattern is a larger value; for negative ones it is a smaller value.
  intView[0] += (x > 0) === towardsLarger ? 1 : -1;
  return bitsView[0];
}

/**
 * Single-rounded float32 fused multiply-add a * b + c of float32 inputs. The product is exact in float64; the sum
 * is rounded to float64 and then to float32, which can only differ from one rounding when the float64 sum lands
 * exactly halfway between two float32 values, so that case is resolved with the sum's exact remainder.
 */
export function fmaF32(a: number, b: number, c: number): number {
  const product = a * b;
  const sum = product + c;
  const virtualC = sum - product;
  const remainder = product - (sum - virtualC) + (c - virtualC);
  const rounded = f32(sum);
  if (remainder === 0 || rounded === sum || rounded === 0) return rounded;
  const neighbour = adjacentFloat(rounded, sum > rounded);
  if ((rounded + neighbour) / 2 !== sum) return rounded;
  // sum is a tie in float32, but the exact value lies on the side of the remainder's sign.
  const exactAbove = remainder > 0;
  return exactAbove === rounded > sum ? rounded : neighbour;
}

const LOG_P = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
  2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(f32);
const LOG_Q1 = f32(-2.1219444e-4);
const LOG_Q2 = f32(0.693359375);
const SQRT_HALF = f32(0.707106781186547524);
const MIN_NORMAL = floatFromBits(0x00800000);
const HALF_BITS = floatBits(0.5);

/** log256_ps for one lane; input must be a positive float32 (the Box-Muller input 1 - u lies in (0, 1]). */
export function avx2LogF32(input: number): number {
  let x = Math.max(input, MIN_NORMAL);
  const xBits = floatBits(x);
  let exponent = f32((xBits >>> 23) - 0x7f);
  exponent = f32(exponent + 1);
  // Keep the mantissa, forcing the exponent of 0.5: x in [0.5, 1).
  x = floatFromBits((xBits & ~0x7f800000) | HALF_BITS);
  const below = x < SQRT_HALF;
  const tmp = below ? x : 0;
  x = f32(x - 1);
  exponent = f32(exponent - (below ? 1 : 0));
  x = f32(x + tmp);

  const z = f32(x * x);
  let y = LOG_P[0];
  for (let k = 1; k < LOG_P.length; k++) y = fmaF32(y, x, LOG_P[k]); // fused
  y = f32(y * x);
  y = fmaF32(y, z, f32(exponent * LOG_Q1)); // fused: y * z + e * q1 (the first product wins)
  y = fmaF32(-z, 0.5, y); // fused: y - z * 0.5
  x = f32(x + y);
  return fmaF32(exponent, LOG_Q2, x); // fused: x + e * q2
}

const FOUR_OVER_PI = f32(1.27323954473516);
const MINUS_DP1 = f32(-0.78515625);
const MINUS_DP2 = f32(-2.4187564849853515625e-4);
const MINUS_DP3 = f32(-3.77489497744594108e-8);
const SIN_P = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f32);
const COS_P = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f32);

/** sincos256_ps for one lane: [sin(x), cos(x)] in float32. */
export function avx2SinCosF32(input: number): [number, number] {
  let sinNegative = input < 0 || Object.is(input, -0);
  let x = Math.abs(input);
  // Octant j rounded up to even, as the Cephes reduction does.
  let octant = Math.trunc(f32(x * FOUR_OVER_PI));
  octant = (octant + 1) & ~1;
  const y = f32(octant);
  if (octant & 4) sinNegative = !sinNegative;
  const useSinPolyForSin = (octant & 2) === 0;
  const cosNegative = (~(octant - 2) & 4) !== 0;

  // Extended-precision reduction x - y * pi/4 in three parts, each step fused.
  x = fmaF32(y, MINUS_DP1, x);
  x = fmaF32(y, MINUS_DP2, x);
  x = fmaF32(y, MINUS_DP3, x);

  const z = f32(x * x);
  let cosPoly = fmaF32(COS_P[0], z, COS_P[1]); // fused
  cosPoly = fmaF32(cosPoly, z, COS_P[2]); // fused
  cosPoly = f32(cosPoly * z);
  cosPoly = fmaF32(cosPoly, z, -f32(z * 0.5)); // fused: y * z - z * 0.5 (the first product wins)
  cosPoly = f32(cosPoly + 1);

  let sinPoly = fmaF32(SIN_P[0], z, SIN_P[1]); // fused
  sinPoly = fmaF32(sinPoly, z, SIN_P[2]); // fused
  sinPoly = f32(sinPoly * z);
  sinPoly = fmaF32(sinPoly, x, x); // fused

  const sin = useSinPolyForSin ? sinPoly : cosPoly;
  const cos = useSinPolyForSin ? cosPoly : sinPoly;
  return [sinNegative ? -sin : sin, cosNegative ? -cos : cos];
}
