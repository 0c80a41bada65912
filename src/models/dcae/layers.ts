// Checkpoint-bound primitives of DC-AE: convolutions, per-pixel linears, channel norms and activations, each
// reading its weights under a diffusers key prefix. ref: SANA.md §3.2, §3.5

import { Tensor } from '../../graph/graph.js';
import { add, div, gelu, mul, reciprocal, relu, silu, sqrt, sub, tanh } from '../../graph/ops/elementwise.js';
import { conv2d } from '../../graph/ops/conv.js';
import { reduceSumSquare } from '../../graph/ops/norm.js';
import { reshape } from '../../graph/ops/shape-ops.js';
import { describe } from '../../graph/ops/check.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { DcaeActivation, DcaeNormType } from './config.js';

/** eps of every DC-AE norm (diffusers RMSNorm(…, 1e-5) and BatchNorm2d's default). */
export const NORM_EPS = 1e-5;

export function channelsOf(x: Tensor): number {
  const c = x.shape[1];
  if (typeof c !== 'number') throw new Error(`DC-AE: ${describe(x)} needs a static channel count`);
  return c;
}

export interface ConvSpec {
  readonly outChannels: number;
  readonly kernel: number;
  readonly stride?: number;
  readonly groups?: number;
  readonly bias: boolean;
}

/** nn.Conv2d(in, out, k, stride, padding = k // 2, groups, bias) at `prefix`. */
export function conv(w: WeightBinder, prefix: string, x: Tensor, spec: ConvSpec): Tensor {
  const groups = spec.groups ?? 1;
  const inChannels = channelsOf(x);
  const weight = w.get(`${prefix}.weight`, [spec.outChannels, inChannels / groups, spec.kernel, spec.kernel]);
  const bias = spec.bias ? w.get(`${prefix}.bias`, [spec.outChannels]) : null;
  return conv2d(x, weight, bias, { stride: spec.stride ?? 1, padding: Math.floor(spec.kernel / 2), groups });
}

/**
 * A per-pixel nn.Linear(in, out, bias=False) on an NCHW map, run as a 1x1 convolution (MLAS runs it as one GEMM
 * without im2col). The [out, in] weight is viewed as [out, in, 1, 1].
 */
export function pixelLinear(x: Tensor, weight: Tensor): Tensor {
  const [outF, inF] = weight.shape as number[];
  return conv2d(x, reshape(weight, [outF, inF, 1, 1]), null); // weight [out, in, 1, 1]
}

/** The norm after a conv: RMSNorm over channels (weight and bias) or an eval-mode BatchNorm2d. */
export function channelNorm(w: WeightBinder, prefix: string, x: Tensor, type: DcaeNormType): Tensor {
  const c = channelsOf(x);
  const weight = w.get(`${prefix}.weight`, [c]);
  const bias = w.get(`${prefix}.bias`, [c]);
  if (type === 'rms_norm') return rmsNormOverChannels(x, weight, bias);
  // BatchNorm2d in eval mode is a per-channel affine map; scale and shift fold into constants at session creation.
  const mean = w.get(`${prefix}.running_mean`, [c]);
  const variance = w.get(`${prefix}.running_var`, [c]);
  const scale = div(weight, sqrt(add(variance, NORM_EPS)));
  const shift = sub(bias, mul(mean, scale));
  return add(mul(x, reshape(scale, [1, c, 1, 1])), reshape(shift, [1, c, 1, 1])); // [1, C, 1, 1] each
}

/** diffusers get_activation by name; null is the identity (ResBlock with act_fn None). */
export function activate(x: Tensor, act: DcaeActivation): Tensor {
  switch (act) {
    case null:
      return x;
    case 'silu':
    case 'swish':
      return silu(x);
    case 'relu':
      return relu(x);
    case 'gelu':
      return gelu(x);
    case 'mish':
      return mul(x, tanh(x.graph.node1('Softplus', [x], x.dtype, x.shape)));
  }
}

/**
 * diffusers RMSNorm over the channels of an NCHW map: x * rsqrt(mean_c(x^2) + eps) * weight + bias. The sum of
 * squares is one reduction pass and the reciprocal root is taken on the [B, 1, H, W] statistic, so the full-size
 * map is touched by four passes (reduce, scale, weight, bias) instead of channelRmsNorm's seven.
 */
export function rmsNormOverChannels(x: Tensor, weight: Tensor, bias: Tensor): Tensor {
  const c = channelsOf(x);
  const meanSquare = mul(reduceSumSquare(x, [1], true), 1 / c); // [B, 1, H, W]
  const inverseRms = reciprocal(sqrt(add(meanSquare, NORM_EPS))); // [B, 1, H, W]
  const scaled = mul(mul(x, inverseRms), reshape(weight, [1, c, 1, 1])); // weight as [1, C, 1, 1]
  return add(scaled, reshape(bias, [1, c, 1, 1])); // bias as [1, C, 1, 1]
}
