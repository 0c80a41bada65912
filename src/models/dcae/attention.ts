// DC-AE multi-scale ReLU linear attention (diffusers SanaMultiscaleLinearAttention, original LiteMLA), the first
// half of an EfficientViT block, with its output projection, norm and residual. ref: SANA.md §3.2 (1.)

import { Tensor } from '../../graph/graph.js';
import { add } from '../../graph/ops/elementwise.js';
import { concat, dimOf, mulDims, reshape, split } from '../../graph/ops/shape-ops.js';
import { reluLinearAttention } from '../../nn/linear-attention.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { DcaeNormType } from './config.js';
import { channelNorm, channelsOf, conv, pixelLinear } from './layers.js';

/** diffusers' eps for the attention denominator. */
const ATTENTION_EPS = 1e-15;

/**
 * x + norm_out(to_out(attention(qkv, multiscale(qkv)))) on an NCHW map.
 *
 * The three projections to_q/to_k/to_v are thirds of the original single qkv conv, so their stacked output is
 * viewed in groups of 3*headDim channels: group g holds (q, k, v) of head g, taken from rows [3dg, 3dg + 3d) of
 * the stacked weight, NOT rows g*d of each projection. Each multiscale branch (depthwise k x k, then a grouped 1x1
 * conv with 3*heads groups) adds another `heads` groups. diffusers switches to a quadratic form when H*W <=
 * headDim; that form is the same sum with the same eps, so the linear form is used for every size.
 */
export function multiscaleLinearAttention(
  w: WeightBinder,
  prefix: string,
  x: Tensor,
  headDim: number,
  kernelSizes: readonly number[],
  normType: DcaeNormType,
): Tensor {
  const g = x.graph;
  return g.scope(prefix, () => {
    const channels = channelsOf(x);
    const heads = Math.floor(channels / headDim);
    const inner = heads * headDim;
    const stacked = concat(
      ['to_q', 'to_k', 'to_v'].map((n) => w.get(`${prefix}.${n}.weight`, [inner, channels])),
      0,
    ); // [3 * inner, C]
    const qkv = pixelLinear(x, stacked); // [B, 3 * inner, H, W]
    const branches = [qkv];
    kernelSizes.forEach((k, i) => {
      const p = `${prefix}.to_qkv_multiscale.${i}`;
      const local = conv(w, `${p}.proj_in`, qkv, { outChannels: 3 * inner, kernel: k, groups: 3 * inner, bias: false });
      branches.push(conv(w, `${p}.proj_out`, local, { outChannels: 3 * inner, kernel: 1, groups: 3 * heads, bias: false }));
    });
    const all = branches.length === 1 ? qkv : concat(branches, 1); // [B, 3 * inner * branches, H, W]
    const groups = heads * branches.length;
    const b = dimOf(x, 0);
    const h = dimOf(x, 2);
    const wd = dimOf(x, 3);
    const n = mulDims(h, wd);
    const grouped = reshape(all, [b, groups, 3 * headDim, n]); // [B, G, 3d, N]
    const [q, k, v] = split(grouped, 2, [headDim, headDim, headDim]); // [B, G, d, N] each
    const attended = reluLinearAttention(q, k, v, { eps: ATTENTION_EPS }); // [B, G, d, N]
    const merged = reshape(attended, [b, groups * headDim, h, wd]); // [B, G * d, H, W], channel = group * d + i
    const toOut = w.get(`${prefix}.to_out.weight`, [channels, groups * headDim]);
    const projected = pixelLinear(merged, toOut); // [B, C, H, W]
    return add(channelNorm(w, `${prefix}.norm_out`, projected, normType), x);
  });
}
