// DC-AE decoder: latent [B, latent, h, w] (unscaled) -> sample [B, in, r*h, r*w], not clamped. Stages run from the
// last index to the first. ref: SANA.md §3.4

import { Tensor } from '../../graph/graph.js';
import { add } from '../../graph/ops/elementwise.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { block, repeatChannels, upBlock } from './blocks.js';
import { DcaeConfig } from './config.js';
import { StageTap } from './encoder.js';
import { activate, channelNorm, conv } from './layers.js';
import { WINOGRAD_MIN_CHANNELS, stageUsesWinograd, upBlockUsesWinograd } from './winograd.js';

export function buildDecoder(w: WeightBinder, c: DcaeConfig, latent: Tensor, tap: StageTap = () => {}, winogradMinChannels = WINOGRAD_MIN_CHANNELS): Tensor {
  const g = latent.graph;
  const widths = c.decoderBlockOutChannels;
  const layers = c.decoderLayersPerBlock;
  const stages = widths.length;
  const top = widths[stages - 1];
  const convIn = g.scope('decoder.conv_in', () => conv(w, 'decoder.conv_in', latent, { outChannels: top, kernel: 3, bias: true }));
  tap('decoder.conv_in', convIn);
  let h = c.decoderInShortcut ? add(convIn, repeatChannels(latent, top / c.latentChannels)) : convIn;
  for (let i = stages - 1; i >= 0; i--) {
    let index = 0;
    if (i < stages - 1 && layers[i] > 0) {
      const winograd = upBlockUsesWinograd(i, stages, widths[i], winogradMinChannels);
      h = upBlock(w, `decoder.up_blocks.${i}.${index++}`, h, widths[i], c.upsampleBlockType, true, winograd);
    }
    for (let j = 0; j < layers[i]; j++) {
      h = block(w, `decoder.up_blocks.${i}.${index++}`, h, {
        type: c.decoderBlockTypes[i],
        normType: c.decoderNormTypes[i],
        act: c.decoderActFns[i],
        headDim: c.attentionHeadDim,
        multiscales: c.decoderQkvMultiscales[i],
        winograd: stageUsesWinograd(i, stages, widths[i], winogradMinChannels),
      });
    }
    tap(`decoder.up_blocks.${i}`, h);
  }
  return g.scope('decoder.out', () => {
    const normed = channelNorm(w, 'decoder.norm_out', h, 'rms_norm');
    tap('decoder.norm_out', normed);
    const act = activate(normed, c.decoderConvActFn);
    // diffusers: with an empty first stage, conv_out itself upsamples (a DCUpBlock2d without shortcut).
    const sample =
      layers[0] > 0
        ? conv(w, 'decoder.conv_out', act, { outChannels: c.inChannels, kernel: 3, bias: true })
        : upBlock(w, 'decoder.conv_out', act, c.inChannels, c.upsampleBlockType, false);
    tap('decoder', sample);
    return sample;
  });
}
