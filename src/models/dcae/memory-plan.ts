// Whether an untiled DC-AE pass fits in the memory the machine has left, and what to do when it does not. An
// untiled pass holds its widest stage's activations at full resolution several times over: the real f32c32
// decoder peaks at about 4.2 kB per output pixel (measured below), so a 4096 x 4096 decode alone would need 65 GiB.
// Before each pass the estimate is compared with the memory available now; a batch that does not fit is run one
// image at a time (the same numbers: the convolutions and norms never mix images), and an image that does not fit
// alone is run in diffusers' 512 px tiles with a notice, instead of dying of an out-of-memory abort minutes in.
// ref: SANA.md §3.6

import * as os from 'node:os';
import type { DcaeConfig } from './config.js';

export type DcaePass = 'encode' | 'decode';

/**
 * Peak working bytes of an untiled pass, per full-resolution pixel, per float32 byte a pixel of the widest stage
 * holds (max over stages s of 4 C_s / 4^s). Measured with onnxruntime-node 1.30 (peak RSS above the loaded model,
 * marginal between two sizes, batch 1): decode, the real f32c32 config (stage 0: 128 channels, 512 B/px):
 * 1730 MiB at 768 px and 8797 MiB at 1536 px, 4188 B/px marginal (8.2x); the bundled model (16 channels):
 * 352 B/px marginal (5.5x). Encode, the bundled model (stage 0: 16 channels): 1057 MiB at 2048 px, 2474 MiB at
 * 3072 px, 283 B/px marginal (4.4x); scaled by the decoders' big-to-small ratio (8.2 / 5.5) for the wide
 * checkpoints, whose encoder weights are not on this machine. Rounded up, so the estimate errs on the safe side.
 */
export const WORKING_FACTOR: Readonly<Record<DcaePass, number>> = { decode: 8.5, encode: 7 };

/** Share of the memory available at the start of a pass that the pass may plan to use (the rest is headroom). */
export const PASS_MEMORY_SHARE = 0.8;

/** Bytes per full-resolution pixel of the widest stage's float32 activations. */
export function widestStageBytesPerPixel(channels: readonly number[]): number {
  return Math.max(...channels.map((c, s) => (4 * c) / 4 ** s));
}

/** Estimated peak working bytes of one untiled pass over `images` images of height x width pixels. */
export function untiledPassBytes(config: DcaeConfig, pass: DcaePass, images: number, height: number, width: number): number {
  const channels = pass === 'decode' ? config.decoderBlockOutChannels : config.encoderBlockOutChannels;
  return WORKING_FACTOR[pass] * widestStageBytesPerPixel(channels) * images * height * width;
}

/** Memory the process may still take: MemAvailable, or the cgroup's limit less what the process holds. */
export function availableMemoryBytes(): number {
  const free = os.freemem();
  const limit = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0;
  if (limit && limit < os.totalmem()) return Math.min(free, Math.max(0, limit - process.memoryUsage().rss));
  return free;
}

export type PassPlan =
  | { readonly mode: 'whole' }
  | { readonly mode: 'per-image' }
  | { readonly mode: 'tiled'; readonly notice: string };

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

/**
 * How to run an untiled pass over [images, ., height, width] (image pixels) with `available` bytes free: at once,
 * one image at a time, or in tiles of tileSide px (which must fit: otherwise a clear error, before any work).
 */
export function planPass(
  config: DcaeConfig,
  pass: DcaePass,
  images: number,
  height: number,
  width: number,
  available: number,
  tileSide: number,
): PassPlan {
  const budget = available * PASS_MEMORY_SHARE;
  if (untiledPassBytes(config, pass, images, height, width) <= budget) return { mode: 'whole' };
  const one = untiledPassBytes(config, pass, 1, height, width);
  if (images > 1 && one <= budget) return { mode: 'per-image' };
  const tile = untiledPassBytes(config, pass, 1, Math.min(height, tileSide), Math.min(width, tileSide));
  if (tile > budget) {
    throw new Error(
      `DC-AE ${pass}: even one ${tileSide} px tile needs about ${gib(tile)} of working memory and ${gib(available)} is available: free memory or use smaller images`,
    );
  }
  return {
    mode: 'tiled',
    notice:
      `the untiled VAE ${pass} of a ${width}x${height} image needs about ${gib(one)} and ${gib(available)} is available: ` +
      `${pass === 'decode' ? 'decoding' : 'encoding'} in ${tileSide} px tiles instead (pass --vae-tiling to choose this yourself)`,
  };
}
