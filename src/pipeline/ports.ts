// What the pipeline needs from each model component. The real adapters (src/pipeline/components.ts) wrap the
// Gemma-2 prompt encoder, the SANA transformer and DC-AE; tests can substitute small stand-ins.

import { HostTensor } from '../io/host-tensor.js';

export interface EncodedPrompts {
  /** [B, T, C] caption embeddings, one row per prompt. */
  readonly promptEmbeds: HostTensor<'float32'>;
  /** [B, T] int64, 1 = token. */
  readonly promptMask: HostTensor<'int64'>;
  /** [B, T, C] negative embeddings (one row per prompt), present when guidance is used. */
  readonly negativeEmbeds?: HostTensor<'float32'>;
  readonly negativeMask?: HostTensor<'int64'>;
  /** Human-readable notes, e.g. truncated prompts. */
  readonly warnings: readonly string[];
}

export interface PromptEncoder {
  /** Hidden width of the text encoder (must equal the transformer's caption_channels). */
  readonly hiddenSize: number;
  encode(prompts: readonly string[], negativePrompt: string, options: { maxSequenceLength: number; withNegative: boolean }): Promise<EncodedPrompts>;
  release(): Promise<void>;
}

/** What a denoise step may get besides latents, timestep and caption. */
export interface DenoiseExtras {
  /** [B] guidance-embedding input (SANA-Sprint: guidance_scale x guidance_embeds_scale). */
  guidance?: HostTensor<'float32'>;
  /** Perturbed-attention guidance: in these blocks, the rows marked true get an identity self-attention map. */
  perturbed?: { layers: readonly number[]; rows: readonly boolean[] };
  /** ControlNet: residual k [B, N, D] is added to the hidden states after block k + 1. */
  blockResiduals?: readonly HostTensor<'float32'>[];
}

export interface Denoiser {
  readonly latentChannels: number;
  /** Transformer blocks (PAG layer patterns match transformer_blocks.K.attn1). */
  readonly numLayers: number;
  /** A guidance-embedding model (Sprint) takes guidance as an input instead of a CFG batch. */
  readonly guidanceEmbeds: boolean;
  readonly guidanceEmbedsScale: number;
  readonly captionChannels: number;
  /** Transformer sample_size (latent pixels), which picks the resolution-bin table. */
  readonly sampleSize: number;
  /** Multiplier the pipeline applies to timesteps (config timestep_scale). */
  readonly timestepScale: number;
  /** Computes what depends only on the caption (projection, cross-attention keys/values) once per image batch. */
  prepareCaption(embeds: HostTensor<'float32'>, mask: HostTensor<'int64'>): Promise<CaptionCache>;
  /** Flow velocity for latents [B, C, h, w] at timesteps [B] (float32, already scaled). */
  predict(latents: HostTensor<'float32'>, timestep: HostTensor<'float32'>, caption: CaptionCache, extras?: DenoiseExtras): Promise<HostTensor<'float32'>>;
  release(): Promise<void>;
}

/** Opaque per-batch caption state owned by the denoiser. */
export interface CaptionCache {
  release(): void;
}

export interface LatentDecoder {
  readonly latentChannels: number;
  readonly scalingFactor: number;
  /**
   * [B, C, h, w] unscaled latents -> [B, 3, 32h, 32w] images in about [-1, 1]. A tiled decoder calls `onTile` after
   * each tile; `onNotice` hears of a change of plan the user should know of (tiles because memory is short).
   */
  decode(
    latents: HostTensor<'float32'>,
    onTile?: (done: number, total: number) => void,
    onNotice?: (message: string) => void,
  ): Promise<HostTensor<'float32'>>;
  release(): Promise<void>;
}

export interface ImageEncoder {
  /** [B, 3, H, W] images in [-1, 1] -> [B, C, H/32, W/32] unscaled latents. */
  encode(images: HostTensor<'float32'>, onNotice?: (message: string) => void): Promise<HostTensor<'float32'>>;
  release(): Promise<void>;
}

/** A ControlNet beside the denoiser: per step, the residuals it adds after the transformer's blocks. */
export interface ControlNet {
  prepareCaption(embeds: HostTensor<'float32'>, mask: HostTensor<'int64'>): Promise<CaptionCache>;
  /** Block residuals for the model batch, given the control image's scaled latents (same batch). */
  residuals(latents: HostTensor<'float32'>, timestep: HostTensor<'float32'>, control: HostTensor<'float32'>, scale: number, caption: CaptionCache): Promise<HostTensor<'float32'>[]>;
  release(): Promise<void>;
}
