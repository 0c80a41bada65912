// AutoencoderDC configuration, read from a diffusers `vae/config.json`. Keys and defaults are the constructor
// arguments of diffusers' AutoencoderDC; per-stage options may be one value or a list with one value per stage.
// ref: SANA.md §3.1

import { ConfigReader } from '../../io/config.js';

export type DcaeBlockType = 'ResBlock' | 'EfficientViTBlock';
export type DcaeNormType = 'rms_norm' | 'batch_norm';
/** Activations diffusers' get_activation knows ("swish" is SiLU); null = identity. */
export type DcaeActivation = 'silu' | 'swish' | 'relu' | 'gelu' | 'mish' | null;

export interface DcaeConfig {
  readonly inChannels: number;
  readonly latentChannels: number;
  readonly attentionHeadDim: number;
  readonly encoderBlockTypes: readonly DcaeBlockType[];
  readonly decoderBlockTypes: readonly DcaeBlockType[];
  readonly encoderBlockOutChannels: readonly number[];
  readonly decoderBlockOutChannels: readonly number[];
  readonly encoderLayersPerBlock: readonly number[];
  readonly decoderLayersPerBlock: readonly number[];
  readonly encoderQkvMultiscales: readonly (readonly number[])[];
  readonly decoderQkvMultiscales: readonly (readonly number[])[];
  /** "pixel_shuffle": conv to 4x channels then pixel shuffle; "interpolate": nearest x2 then conv. */
  readonly upsampleBlockType: 'pixel_shuffle' | 'interpolate';
  /** "pixel_unshuffle": stride-1 conv then pixel unshuffle; "conv" (diffusers: anything else): stride-2 conv. */
  readonly downsampleBlockType: 'pixel_unshuffle' | 'conv';
  readonly decoderNormTypes: readonly DcaeNormType[];
  readonly decoderActFns: readonly DcaeActivation[];
  readonly encoderOutShortcut: boolean;
  readonly decoderInShortcut: boolean;
  readonly decoderConvActFn: DcaeActivation;
  /** Latents for the transformer are encoder(x) * scalingFactor; decode takes latents / scalingFactor. */
  readonly scalingFactor: number;
  /** 2^(stages - 1): image pixels per latent pixel along each axis. */
  readonly spatialCompressionRatio: number;
}

const BLOCK_TYPES: readonly DcaeBlockType[] = ['ResBlock', 'EfficientViTBlock'];
const NORM_TYPES: readonly DcaeNormType[] = ['rms_norm', 'batch_norm'];
const ACTIVATIONS = ['silu', 'swish', 'relu', 'gelu', 'mish'] as const;

const isBlockType = (v: unknown): v is DcaeBlockType => BLOCK_TYPES.includes(v as DcaeBlockType);
const isNormType = (v: unknown): v is DcaeNormType => NORM_TYPES.includes(v as DcaeNormType);
const isActivation = (v: unknown): v is DcaeActivation => v === null || (ACTIVATIONS as readonly unknown[]).includes(v);
const isKernelList = (v: unknown): v is number[] =>
  Array.isArray(v) && v.every((k) => Number.isInteger(k) && k > 0 && k % 2 === 1);

export function readDcaeConfig(file: string): DcaeConfig {
  return parseDcaeConfig(ConfigReader.open(file));
}

export function parseDcaeConfig(r: ConfigReader): DcaeConfig {
  const fail = (key: string, expected: string): never => {
    throw new Error(`${r.file}: config key "${key}" must be ${expected} (got ${JSON.stringify(r.raw[key])})`);
  };
  const encoderBlockOutChannels = positiveList(r, 'encoder_block_out_channels', [128, 256, 512, 512, 1024, 1024]);
  const decoderBlockOutChannels = positiveList(r, 'decoder_block_out_channels', [128, 256, 512, 512, 1024, 1024]);
  const stages = encoderBlockOutChannels.length;
  if (decoderBlockOutChannels.length !== stages) {
    fail('decoder_block_out_channels', `a list of ${stages} values, one per encoder stage`);
  }
  const layers = (key: string, fallback: number[]): number[] => {
    const v = r.intArray(key, fallback);
    if (v.length !== stages || v.some((n) => n < 0)) fail(key, `a list of ${stages} non-negative integers`);
    // Only the first stage may be empty (diffusers then down/upsamples in conv_in/conv_out); an empty later stage
    // would drop a resampling step and break the 2^(stages-1) compression diffusers assumes.
    if (v.slice(1).some((n) => n === 0)) fail(key, 'zero only for the first stage');
    return v;
  };
  const encoderLayersPerBlock = layers('encoder_layers_per_block', [2, 2, 2, 3, 3, 3]);
  const decoderLayersPerBlock = layers('decoder_layers_per_block', [3, 3, 3, 3, 3, 3]);
  const defaultScales = [[], [], [], [5], [5], [5]];
  const multiscales = (key: string): number[][] => {
    const v = r.has(key) ? r.raw[key] : defaultScales;
    if (!Array.isArray(v) || v.length !== stages || !v.every(isKernelList)) {
      fail(key, `a list of ${stages} lists of odd kernel sizes`);
    }
    return v as number[][];
  };
  const headDim = r.positiveInt('attention_head_dim', 32);
  const latentChannels = r.positiveInt('latent_channels', 32);
  const config: DcaeConfig = {
    inChannels: r.positiveInt('in_channels', 3),
    latentChannels,
    attentionHeadDim: headDim,
    encoderBlockTypes: r.perStage('encoder_block_types', stages, isBlockType, 'ResBlock'),
    decoderBlockTypes: r.perStage('decoder_block_types', stages, isBlockType, 'ResBlock'),
    encoderBlockOutChannels,
    decoderBlockOutChannels,
    encoderLayersPerBlock,
    decoderLayersPerBlock,
    encoderQkvMultiscales: multiscales('encoder_qkv_multiscales'),
    decoderQkvMultiscales: multiscales('decoder_qkv_multiscales'),
    upsampleBlockType: r.oneOf('upsample_block_type', ['pixel_shuffle', 'interpolate'], 'pixel_shuffle'),
    downsampleBlockType: downsampleType(r),
    decoderNormTypes: r.perStage('decoder_norm_types', stages, isNormType, 'rms_norm'),
    decoderActFns: r.perStage('decoder_act_fns', stages, isActivation, 'silu'),
    encoderOutShortcut: r.bool('encoder_out_shortcut', true),
    decoderInShortcut: r.bool('decoder_in_shortcut', true),
    decoderConvActFn: r.has('decoder_conv_act_fn') ? activation(r, 'decoder_conv_act_fn') : 'relu',
    scalingFactor: r.number('scaling_factor', 1.0),
    spatialCompressionRatio: 2 ** (stages - 1),
  };
  checkDivisibility(r, config);
  return config;
}

function positiveList(r: ConfigReader, key: string, fallback: number[]): number[] {
  const v = r.intArray(key, fallback);
  if (v.length < 1 || v.some((n) => n < 1)) {
    throw new Error(`${r.file}: config key "${key}" must be a non-empty list of positive integers (got ${JSON.stringify(v)})`);
  }
  return v;
}

function downsampleType(r: ConfigReader): 'pixel_unshuffle' | 'conv' {
  // diffusers compares with "pixel_unshuffle" and treats every other value as a strided conv; released configs
  // spell it "Conv" (Sana) or "conv" (save_pretrained of the tiny fixture).
  const v = r.oneOf('downsample_block_type', ['pixel_unshuffle', 'Conv', 'conv'], 'pixel_unshuffle');
  return v === 'pixel_unshuffle' ? v : 'conv';
}

function activation(r: ConfigReader, key: string): DcaeActivation {
  const v = r.raw[key];
  if (!isActivation(v)) {
    throw new Error(`${r.file}: config key "${key}" must be one of ${ACTIVATIONS.join(', ')} or null (got ${JSON.stringify(v)})`);
  }
  return v;
}

/** Channel relations the shortcuts and attention heads need, checked up front so errors name the key. */
function checkDivisibility(r: ConfigReader, c: DcaeConfig): void {
  const problems: string[] = [];
  const enc = c.encoderBlockOutChannels;
  const dec = c.decoderBlockOutChannels;
  const stages = enc.length;
  for (let i = 0; i < stages; i++) {
    if (c.encoderBlockTypes[i] === 'EfficientViTBlock' && c.encoderLayersPerBlock[i] > 0 && enc[i] % c.attentionHeadDim !== 0) {
      problems.push(`encoder_block_out_channels[${i}] = ${enc[i]} is not a multiple of attention_head_dim ${c.attentionHeadDim}`);
    }
    if (c.decoderBlockTypes[i] === 'EfficientViTBlock' && c.decoderLayersPerBlock[i] > 0 && dec[i] % c.attentionHeadDim !== 0) {
      problems.push(`decoder_block_out_channels[${i}] = ${dec[i]} is not a multiple of attention_head_dim ${c.attentionHeadDim}`);
    }
    if (i + 1 < stages && c.encoderLayersPerBlock[i] > 0 && (4 * enc[i]) % enc[i + 1] !== 0) {
      problems.push(`encoder_block_out_channels: 4 x ${enc[i]} (stage ${i}) is not a multiple of ${enc[i + 1]} (stage ${i + 1})`);
    }
    if (i + 1 < stages && c.decoderLayersPerBlock[i] > 0 && (4 * dec[i]) % dec[i + 1] !== 0) {
      problems.push(`decoder_block_out_channels: 4 x ${dec[i]} (stage ${i}) is not a multiple of ${dec[i + 1]} (stage ${i + 1})`);
    }
  }
  if (c.encoderOutShortcut && enc[stages - 1] % c.latentChannels !== 0) {
    problems.push(`encoder_out_shortcut needs encoder_block_out_channels[-1] = ${enc[stages - 1]} to be a multiple of latent_channels ${c.latentChannels}`);
  }
  if (c.decoderInShortcut && dec[stages - 1] % c.latentChannels !== 0) {
    problems.push(`decoder_in_shortcut needs decoder_block_out_channels[-1] = ${dec[stages - 1]} to be a multiple of latent_channels ${c.latentChannels}`);
  }
  if (problems.length) throw new Error(`${r.file}: inconsistent AutoencoderDC config:\n  ${problems.join('\n  ')}`);
}
