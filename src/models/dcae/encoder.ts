// DC-AE encoder: image [B, in, H, W] in [-1, 1] -> latent [B, latent, H/r, W/r] (not scaled), r = 2^(stages-1).
// ref: SANA.md §3.3

import { Tensor } from '../../graph/graph.js';
import { add } from '../../graph/ops/elementwise.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { block, channelGroupMean, downBlock } from './blocks.js';
import { DcaeConfig } from './config.js';
import { conv } from './layers.js';
import { WINOGRAD_MIN_CHANNELS, stageUsesWinograd } from './winograd.js';

/** Receives named stage outputs (diffusers module names, as forward hooks would see them). */
export type StageTap = (name: string, t: Tensor) => void;

export function buildEncoder(w: WeightBinder, c: DcaeConfig, image: Tensor, tap: StageTap = () => {}, winogradMinChannels = WINOGRAD_MIN_CHANNELS): Tensor {
  const g = image.graph;
  const widths = c.encoderBlockOutChannels;
  const layers = c.encoderLayersPerBlock;
  const stages = widths.length;
  // diffusers: with an empty first stage, conv_in itself downsamples (a DCDownBlock2d without shortcut).
  let h = g.scope('encoder.conv_in', () =>
    layers[0] > 0
      ? conv(w, 'encoder.conv_in', image, { outChannels: widths[0], kernel: 3, bias: true })
      : downBlock(w, 'encoder.conv_in', image, widths[1], c.downsampleBlockType, false),
  );
  tap('encoder.conv_in', h);
  for (let i = 0; i < stages; i++) {
    for (let j = 0; j < layers[i]; j++) {
      h = block(w, `encoder.down_blocks.${i}.${j}`, h, {
        type: c.encoderBlockTypes[i],
        normType: 'rms_norm',
        act: 'silu',
        headDim: c.attentionHeadDim,
        multiscales: c.encoderQkvMultiscales[i],
        winograd: stageUsesWinograd(i, stages, widths[i], winogradMinChannels),
      });
    }
    if (i < stages - 1 && layers[i] > 0) {
      h = downBlock(w, `encoder.down_blocks.${i}.${layers[i]}`, h, widths[i + 1], c.downsampleBlockType, true);
    }
    tap(`encoder.down_blocks.${i}`, h);
  }
  const out = g.scope('encoder.conv_out', () => conv(w, 'encoder.conv_out', h, { outChannels: c.latentChannels, kernel: 3, bias: true }));
  tap('encoder.conv_out', out);
  const latent = c.encoderOutShortcut ? add(out, channelGroupMean(h, c.latentChannels)) : out;
  tap('encoder', latent);
  return latent;
}
