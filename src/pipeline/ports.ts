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

export interface Denoiser {
  readonly latentChannels: number;
  readonly captionChannels: number;
  /** Transformer sample_size (latent pixels), which picks the resolution-bin table. */
  readonly sampleSize: number;
  /** Multiplier the pipeline applies to timesteps (config timestep_scale). */
  readonly timestepScale: number;
  /** Computes what depends only on the caption (projection, cross-attention keys/values) once per image batch. */
  prepareCaption(embeds: HostTensor<'float32'>, mask: HostTensor<'int64'>): Promise<CaptionCache>;
  /** Flow velocity for latents [B, C, h, w] at timesteps [B] (float32, already scaled). */
  predict(latents: HostTensor<'float32'>, timestep: HostTensor<'float32'>, caption: CaptionCache): Promise<HostTensor<'float32'>>;
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
   * each tile.
   */
  decode(latents: HostTensor<'float32'>, onTile?: (done: number, total: number) => void): Promise<HostTensor<'float32'>>;
  release(): Promise<void>;
}
