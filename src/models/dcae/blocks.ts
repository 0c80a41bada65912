// DC-AE blocks: ResBlock, GLUMBConv, EfficientViT block, and the down/up-sampling blocks with their
// pixel-(un)shuffle shortcuts. ref: SANA.md §3.2

import { Tensor } from '../../graph/graph.js';
import { add, mul, silu } from '../../graph/ops/elementwise.js';
import { pixelShuffle, pixelUnshuffle } from '../../graph/ops/conv.js';
import { reduceMean } from '../../graph/ops/norm.js';
import { dimOf, gather, reshape, split } from '../../graph/ops/shape-ops.js';
import { HostTensor } from '../../io/host-tensor.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { multiscaleLinearAttention } from './attention.js';
import { DcaeActivation, DcaeBlockType, DcaeNormType } from './config.js';
import { activate, channelNorm, channelsOf, conv } from './layers.js';
import { interpolateUpsampleConv } from './upsample.js';
import { winogradConv3x3 } from './winograd.js';

export interface BlockOptions {
  readonly type: DcaeBlockType;
  readonly normType: DcaeNormType;
  readonly act: DcaeActivation;
  readonly headDim: number;
  readonly multiscales: readonly number[];
  /** ResBlock 3x3 convs as Winograd F(4x4, 3x3); only where map sides are known to be multiples of 4. */
  readonly winograd?: boolean;
}

export function block(w: WeightBinder, prefix: string, x: Tensor, o: BlockOptions): Tensor {
  return x.graph.scope(prefix, () =>
    o.type === 'ResBlock' ? resBlock(w, prefix, x, o.normType, o.act, o.winograd) : efficientVitBlock(w, prefix, x, o),
  );
}

/**
 * x + norm(conv2(act(conv1(x)))), conv2 without bias. `winograd` computes both 3x3 convs as Winograd F(4x4, 3x3)
 * (same result to float rounding; needs map sides that are multiples of 4).
 */
export function resBlock(w: WeightBinder, prefix: string, x: Tensor, normType: DcaeNormType, act: DcaeActivation, winograd = false): Tensor {
  const c = channelsOf(x);
  const conv3 = (name: string, input: Tensor, bias: boolean): Tensor => {
    if (!winograd) return conv(w, `${prefix}.${name}`, input, { outChannels: c, kernel: 3, bias });
    return winogradConv3x3(input, w.get(`${prefix}.${name}.weight`, [c, c, 3, 3]), bias ? w.get(`${prefix}.${name}.bias`, [c]) : null);
  };
  const h = activate(conv3('conv1', x, true), act);
  const y = conv3('conv2', h, false);
  return add(channelNorm(w, `${prefix}.norm`, y, normType), x);
}

/** Attention sub-block then GLUMBConv sub-block, each residual. */
export function efficientVitBlock(w: WeightBinder, prefix: string, x: Tensor, o: BlockOptions): Tensor {
  const attended = multiscaleLinearAttention(w, `${prefix}.attn`, x, o.headDim, o.multiscales, o.normType);
  return gluMbConv(w, `${prefix}.conv_out`, attended);
}

/**
 * GLUMBConv with expand ratio 4 and an RMS norm (always rms_norm in DC-AE): 1x1 to 8C, SiLU, depthwise 3x3,
 * value * SiLU(gate), 1x1 to C, norm, residual.
 */
export function gluMbConv(w: WeightBinder, prefix: string, x: Tensor): Tensor {
  const c = channelsOf(x);
  const hidden = 4 * c;
  const inverted = silu(conv(w, `${prefix}.conv_inverted`, x, { outChannels: 2 * hidden, kernel: 1, bias: true }));
  const depth = conv(w, `${prefix}.conv_depth`, inverted, { outChannels: 2 * hidden, kernel: 3, groups: 2 * hidden, bias: true });
  const [value, gate] = split(depth, 1, [hidden, hidden]); // [B, 4C, H, W] each
  const point = conv(w, `${prefix}.conv_point`, mul(value, silu(gate)), { outChannels: c, kernel: 1, bias: false });
  return add(channelNorm(w, `${prefix}.norm`, point, 'rms_norm'), x);
}

/**
 * DCDownBlock2d: a stride-2 conv (or a stride-1 conv to out/4 channels then pixel unshuffle), plus optionally the
 * shortcut pixel_unshuffle(x, 2) averaged over consecutive groups of 4*in/out channels.
 */
export function downBlock(
  w: WeightBinder,
  prefix: string,
  x: Tensor,
  outChannels: number,
  type: 'pixel_unshuffle' | 'conv',
  shortcut: boolean,
): Tensor {
  return x.graph.scope(prefix, () => {
    const main =
      type === 'conv'
        ? conv(w, `${prefix}.conv`, x, { outChannels, kernel: 3, stride: 2, bias: true })
        : pixelUnshuffle(conv(w, `${prefix}.conv`, x, { outChannels: outChannels / 4, kernel: 3, bias: true }), 2);
    if (!shortcut) return main;
    return add(main, channelGroupMean(pixelUnshuffle(x, 2), outChannels));
  });
}

/**
 * DCUpBlock2d: nearest x2 then conv (interpolate), or conv to 4*out channels then pixel shuffle; plus optionally
 * the shortcut pixel_shuffle(repeat_interleave(x, 4*out/in, channels), 2). `winograd` (interpolate only) runs the
 * conv as Winograd F(4x4, 3x3); x's sides must then be multiples of 4.
 */
export function upBlock(
  w: WeightBinder,
  prefix: string,
  x: Tensor,
  outChannels: number,
  type: 'pixel_shuffle' | 'interpolate',
  shortcut: boolean,
  winograd = false,
): Tensor {
  return x.graph.scope(prefix, () => {
    if (type === 'interpolate') return interpolateUpsampleConv(w, prefix, x, outChannels, shortcut, winograd);
    const main = pixelShuffle(conv(w, `${prefix}.conv`, x, { outChannels: 4 * outChannels, kernel: 3, bias: true }), 2);
    if (!shortcut) return main;
    return add(main, pixelShuffle(repeatChannels(x, (4 * outChannels) / channelsOf(x)), 2));
  });
}

/** Mean over consecutive groups of channels: [B, C, H, W] -> [B, outChannels, H, W] (torch unflatten + mean). */
export function channelGroupMean(x: Tensor, outChannels: number): Tensor {
  const c = channelsOf(x);
  if (c % outChannels !== 0) throw new Error(`channelGroupMean: ${c} channels do not split into ${outChannels} groups`);
  const group = c / outChannels;
  if (group === 1) return x;
  const grouped = reshape(x, [dimOf(x, 0), outChannels, group, dimOf(x, 2), dimOf(x, 3)]); // [B, out, g, H, W]
  return reduceMean(grouped, [2], false); // [B, out, H, W]
}

/** torch.repeat_interleave(x, repeats, dim=1): channel c of the result is input channel floor(c / repeats). */
export function repeatChannels(x: Tensor, repeats: number): Tensor {
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`repeatChannels: repeats ${repeats} must be a positive integer`);
  if (repeats === 1) return x;
  const c = channelsOf(x);
  const index = Array.from({ length: c * repeats }, (_, i) => Math.floor(i / repeats));
  return gather(x, x.graph.constant(HostTensor.int64([c * repeats], index), 'repeat_index'), 1); // [B, C * r, H, W]
}
